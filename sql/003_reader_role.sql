-- Read-only role for BI tools and analysts. NOLOGIN: grant it to real login
-- roles (GRANT aifleet_reader TO metabase). Roles are cluster-wide, so the
-- creation is idempotent for a second database on the same server.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aifleet_reader') THEN
		CREATE ROLE aifleet_reader NOLOGIN;
	END IF;
END
$$;

GRANT USAGE ON SCHEMA aifleet TO aifleet_reader;
GRANT SELECT ON aifleet.current_instances, aifleet.current_services, aifleet.current_resources,
	aifleet.capacity_summary, aifleet.change_feed, aifleet.run_status, aifleet.scope_freshness
	TO aifleet_reader;
-- Functions are executable by PUBLIC by default; revoke that so the
-- SECURITY DEFINER as-of functions are only for the reader (and the owner).
REVOKE EXECUTE ON FUNCTION aifleet.fleet_as_of(timestamptz), aifleet.instances_as_of(timestamptz),
	aifleet.services_as_of(timestamptz), aifleet.resources_as_of(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aifleet.fleet_as_of(timestamptz), aifleet.instances_as_of(timestamptz),
	aifleet.services_as_of(timestamptz), aifleet.resources_as_of(timestamptz) TO aifleet_reader;
