-- Room for updates in place (docs/schema.md "Tables"): the entity tables
-- keep a tenth of each page free, so that a run's tombstones and changes
-- can be heap-only tuple (HOT) updates -- the new row version on the
-- page of the old one, no new entry in any of the table's indexes.
--
-- A first load fills every page; then each tombstone or change wrote a
-- row version on another page and an entry in all of the table's indexes
-- (five for resources, the natural key among them six text columns).
-- The columns a tombstone sets (deleted_at, last_changed_at, last_run_id)
-- and most a change sets are in no index, so with room on the page they
-- are HOT: tombstoning 10k resources among a million took 0.3 s instead
-- of 0.5 (tests/bench, 1% churn in every scope of 100k instances), for
-- 11% more pages in these tables.
--
-- The setting applies to the pages written from now on (a first load,
-- new rows); rows already stored keep their pages until they move.
-- history stays full: a version is closed by setting valid, which two of
-- its indexes name, so that update is never HOT.

ALTER TABLE aifleet.instance SET (fillfactor = 90);
ALTER TABLE aifleet.service SET (fillfactor = 90);
ALTER TABLE aifleet.resource SET (fillfactor = 90);
