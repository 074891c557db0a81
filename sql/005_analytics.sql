-- Fleet analytics (docs/schema.md "Analytics"): a GPU catalog, one model
-- name across clouds, capacity over time from history, changes per day.
--
--   * aifleet.gpu_model and aifleet.gpu_alias: the GPUs the three products
--     report, with their memory and where that figure comes from. A name
--     that stands for more than one card (A100: 40 or 80 GB) stays
--     ambiguous; gpu_lookup() resolves it only once a user's alias says
--     which. Rows aifleet ships have shipped = true; a later migration may
--     change those and only those, so a user's own rows survive upgrades.
--   * aifleet.model_key(name): the model name made comparable by the rules
--     of model_key_rules() (case, separators, vendor prefixes, service
--     suffixes), or what a row of aifleet.model_alias says. The views of
--     current instances, services, resources and capacity gain model_key
--     beside the model name as reported.
--   * aifleet.derived_resources: the GPU memory of the cards whose owner
--     reports only their type (TI-ONE), from the catalog, basis 'catalog';
--     never where the owner reports GPU memory itself. capacity_summary
--     counts it (and says how much of its GPU memory it is).
--   * aifleet.capacity_by_model: what each model occupies now, across
--     clouds and spellings (a Hologres node's cards for the services that
--     occupy them).
--   * aifleet.capacity_over_time() and aifleet.changes_by_day(): the
--     questions history exists to answer, without range arithmetic.
--   * aifleet.report_run: where `aifleet report` left off.
--
-- Nothing a view returned before changes but capacity_summary's
-- gpu_memory_gib, which now includes the catalog's figures; columns are
-- only appended.

-- ==== GPU catalog ====

-- The name of a GPU as the catalog compares it: upper case, without the
-- vendor's and product line's words (NVIDIA, Tesla), blanks and
-- underscores as '-', a memory size as <n>GB.
CREATE FUNCTION aifleet.gpu_name_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT nullif(regexp_replace(
		trim(both '-' from regexp_replace(regexp_replace(
			regexp_replace(upper(trim(name)), '^(NVIDIA|TESLA)([[:space:]_-]+(TESLA|GEFORCE))?[[:space:]_-]+', ''),
			'[[:space:]_]+', '-', 'g'), '-{2,}', '-', 'g')),
		'-([0-9]+)-?GB?$', '-\1GB'), '')
$$;
COMMENT ON FUNCTION aifleet.gpu_name_key(text) IS 'A GPU name as the catalog compares it: upper case, a leading NVIDIA or Tesla dropped, blanks and underscores as -, a trailing memory size as <n>GB (nvidia_a100 80g -> A100-80GB).';

CREATE TABLE aifleet.gpu_model (
	gpu_key text PRIMARY KEY CHECK (gpu_key = aifleet.gpu_name_key(gpu_key)),
	vendor text NOT NULL,
	family text NOT NULL,
	memory_gib numeric NOT NULL CHECK (memory_gib > 0),
	architecture text,
	source text NOT NULL CHECK (source <> ''),
	shipped boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE aifleet.gpu_model IS 'GPU catalog: one row per card with a distinct memory size. Shipped rows (shipped = true) come with aifleet and may be changed by its migrations; add your own with shipped = false (the default) and they are kept across upgrades.';
COMMENT ON COLUMN aifleet.gpu_model.gpu_key IS 'Catalog key, in gpu_name_key form (A100-80GB).';
COMMENT ON COLUMN aifleet.gpu_model.vendor IS 'Maker of the card.';
COMMENT ON COLUMN aifleet.gpu_model.family IS 'Model line without the memory size (A100).';
COMMENT ON COLUMN aifleet.gpu_model.memory_gib IS 'Memory per card as the maker states it (GB in data sheets, stored under GiB as resource.gpu_memory_gib is: docs/mapping.md, units).';
COMMENT ON COLUMN aifleet.gpu_model.architecture IS 'GPU architecture (Ampere, Hopper, ...).';
COMMENT ON COLUMN aifleet.gpu_model.source IS 'Where the memory figure comes from.';
COMMENT ON COLUMN aifleet.gpu_model.shipped IS 'true: shipped by aifleet (its migrations may update it); false: a row of your own.';

-- A name maps to one or more catalog rows; to more than one, it is
-- ambiguous. Every gpu_key is also a name of its own row (gpu_lookup).
CREATE TABLE aifleet.gpu_alias (
	name_key text NOT NULL CHECK (name_key = aifleet.gpu_name_key(name_key)),
	gpu_key text NOT NULL REFERENCES aifleet.gpu_model ON UPDATE CASCADE ON DELETE CASCADE,
	shipped boolean NOT NULL DEFAULT false,
	PRIMARY KEY (name_key, gpu_key, shipped)
);
COMMENT ON TABLE aifleet.gpu_alias IS 'Names under which providers report a GPU. A name with several rows is ambiguous and resolves to nothing, unless rows of your own (shipped = false) for that name exist: then only those count.';
COMMENT ON COLUMN aifleet.gpu_alias.name_key IS 'Name in gpu_name_key form (A100-SXM4-80GB).';
COMMENT ON COLUMN aifleet.gpu_alias.gpu_key IS 'Catalog row the name may stand for.';
COMMENT ON COLUMN aifleet.gpu_alias.shipped IS 'true: shipped by aifleet; false: a row of your own, which wins over shipped rows of the same name.';

INSERT INTO aifleet.gpu_model (gpu_key, vendor, family, memory_gib, architecture, source, shipped) VALUES
	('T4', 'NVIDIA', 'T4', 16, 'Turing', 'NVIDIA T4 data sheet (16 GB GDDR6)', true),
	('V100-16GB', 'NVIDIA', 'V100', 16, 'Volta', 'NVIDIA V100 data sheet (16 GB HBM2)', true),
	('V100-32GB', 'NVIDIA', 'V100', 32, 'Volta', 'NVIDIA V100 data sheet (32 GB HBM2)', true),
	('P40', 'NVIDIA', 'P40', 24, 'Pascal', 'NVIDIA Tesla P40 data sheet (24 GB GDDR5)', true),
	('A10', 'NVIDIA', 'A10', 24, 'Ampere', 'NVIDIA A10 data sheet (24 GB GDDR6)', true),
	('A10G', 'NVIDIA', 'A10G', 24, 'Ampere', 'AWS G5 instance specifications (24 GB)', true),
	('A30', 'NVIDIA', 'A30', 24, 'Ampere', 'NVIDIA A30 data sheet (24 GB HBM2)', true),
	('A40', 'NVIDIA', 'A40', 48, 'Ampere', 'NVIDIA A40 data sheet (48 GB GDDR6)', true),
	('A100-40GB', 'NVIDIA', 'A100', 40, 'Ampere', 'NVIDIA A100 data sheet (40 GB HBM2)', true),
	('A100-80GB', 'NVIDIA', 'A100', 80, 'Ampere', 'NVIDIA A100 data sheet (80 GB HBM2e)', true),
	('A800-40GB', 'NVIDIA', 'A800', 40, 'Ampere', 'NVIDIA A800 40GB PCIe product brief', true),
	('A800-80GB', 'NVIDIA', 'A800', 80, 'Ampere', 'NVIDIA A800 80GB PCIe/SXM product brief', true),
	('L4', 'NVIDIA', 'L4', 24, 'Ada Lovelace', 'NVIDIA L4 data sheet (24 GB GDDR6)', true),
	('L20', 'NVIDIA', 'L20', 48, 'Ada Lovelace', 'NVIDIA L20 product brief (48 GB GDDR6)', true),
	('L40', 'NVIDIA', 'L40', 48, 'Ada Lovelace', 'NVIDIA L40 data sheet (48 GB GDDR6)', true),
	('L40S', 'NVIDIA', 'L40S', 48, 'Ada Lovelace', 'NVIDIA L40S data sheet (48 GB GDDR6)', true),
	('H100', 'NVIDIA', 'H100', 80, 'Hopper', 'NVIDIA H100 data sheet (SXM and PCIe: 80 GB)', true),
	('H100-NVL', 'NVIDIA', 'H100', 94, 'Hopper', 'NVIDIA H100 data sheet (H100 NVL: 94 GB)', true),
	('H800', 'NVIDIA', 'H800', 80, 'Hopper', 'NVIDIA H800 product brief (SXM and PCIe: 80 GB)', true),
	('H20-96GB', 'NVIDIA', 'H20', 96, 'Hopper', 'NVIDIA H20 product brief (96 GB HBM3)', true),
	('H20-141GB', 'NVIDIA', 'H20', 141, 'Hopper', 'vendor listings of the H20 141 GB HBM3e variant', true),
	('H200', 'NVIDIA', 'H200', 141, 'Hopper', 'NVIDIA H200 data sheet (141 GB HBM3e)', true);

INSERT INTO aifleet.gpu_alias (name_key, gpu_key, shipped)
SELECT aifleet.gpu_name_key(a.name), a.gpu_key, true
FROM (VALUES
	('T4', 'T4'),
	('V100', 'V100-16GB'), ('V100', 'V100-32GB'),
	('V100-SXM2-16GB', 'V100-16GB'), ('V100-PCIE-16GB', 'V100-16GB'),
	('V100-SXM2-32GB', 'V100-32GB'), ('V100-PCIE-32GB', 'V100-32GB'),
	('A100', 'A100-40GB'), ('A100', 'A100-80GB'),
	('A100-SXM4-40GB', 'A100-40GB'), ('A100-PCIE-40GB', 'A100-40GB'),
	('A100-SXM4-80GB', 'A100-80GB'), ('A100-PCIE-80GB', 'A100-80GB'), ('A100-SXM-80GB', 'A100-80GB'),
	('A800', 'A800-40GB'), ('A800', 'A800-80GB'),
	('A800-PCIE-40GB', 'A800-40GB'), ('A800-SXM4-80GB', 'A800-80GB'), ('A800-PCIE-80GB', 'A800-80GB'),
	('H100-80GB', 'H100'), ('H100-SXM', 'H100'), ('H100-SXM5-80GB', 'H100'),
	('H100-PCIE', 'H100'), ('H100-PCIE-80GB', 'H100'),
	('H100-NVL-94GB', 'H100-NVL'),
	('H800-80GB', 'H800'), ('H800-SXM5-80GB', 'H800'), ('H800-PCIE-80GB', 'H800'),
	('H20', 'H20-96GB'), ('H20', 'H20-141GB'),
	('H200-141GB', 'H200'), ('H200-SXM', 'H200'),
	('L20-48GB', 'L20'), ('L40S-48GB', 'L40S'), ('A10-24GB', 'A10'), ('T4-16GB', 'T4')
) a(name, gpu_key);

-- The catalog row a reported GPU name stands for, or NULL: unknown, or
-- ambiguous. A user's rows for a name (shipped = false) take the place
-- of the shipped ones, so that a user can settle an ambiguous name.
CREATE FUNCTION aifleet.gpu_lookup(name text) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
	SELECT CASE WHEN count(DISTINCT c.gpu_key) = 1 THEN min(c.gpu_key) END
	FROM (SELECT n.gpu_key, rank() OVER (ORDER BY n.shipped) AS pick
		FROM (SELECT a.gpu_key, a.shipped FROM aifleet.gpu_alias a
			WHERE a.name_key = aifleet.gpu_name_key(name)
			UNION ALL
			SELECT g.gpu_key, g.shipped FROM aifleet.gpu_model g
			WHERE g.gpu_key = aifleet.gpu_name_key(name)) n) c
	WHERE c.pick = 1
$$;
COMMENT ON FUNCTION aifleet.gpu_lookup(text) IS 'Catalog key (aifleet.gpu_model.gpu_key) of a reported GPU name, or NULL when the name is unknown or ambiguous (A100: 40 or 80 GB). Your own aliases (shipped = false) for a name replace the shipped ones.';

-- ==== One model name across clouds ====

-- docs/schema.md "Analytics" lists the rules with examples; keep the two
-- in step. Not STRICT (nor model_key, gpu_name_key): PostgreSQL does not
-- inline a STRICT SQL function whose body is not strict, and a call per
-- row costs a query's executor; a NULL name gives NULL all the same.
CREATE FUNCTION aifleet.model_key_rules(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT nullif(regexp_replace(regexp_replace(
		trim(both '-' from regexp_replace(regexp_replace(
			lower(regexp_replace(trim(name), '^.*/', '')),
			'[[:space:]_]+', '-', 'g'), '-{2,}', '-', 'g')),
		'^(meta|mistralai|deepseek-ai|thudm|zhipuai|01-ai|baichuan-inc|nvidia|google|microsoft|alibaba|aliyun|tencent)-(?=[a-z0-9])', ''),
		'(-(service|svc|serving|server|online|prod|staging|deploy|deployment|endpoint|infer|inference))+$', ''), '')
$$;
COMMENT ON FUNCTION aifleet.model_key_rules(text) IS 'A model name made comparable: the part after the last /, lower case, blanks and underscores as -, one leading vendor prefix (meta-, deepseek-ai-, ...) and trailing service suffixes (-service, -svc, -serving, -online, -prod, ...) dropped: DeepSeek-V3, deepseek-ai/DeepSeek-V3 and deepseek-v3-service give deepseek-v3.';

CREATE TABLE aifleet.model_alias (
	name_key text PRIMARY KEY CHECK (name_key = aifleet.model_key_rules(name_key)),
	model_key text NOT NULL CHECK (model_key = aifleet.model_key_rules(model_key)),
	note text,
	shipped boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE aifleet.model_alias IS 'Model names the rules of model_key_rules() cannot bring together: a name (after the rules) and the key it stands for. Add your own; shipped rows (shipped = true) may be changed by later migrations, yours are kept.';
COMMENT ON COLUMN aifleet.model_alias.name_key IS 'A name after model_key_rules().';
COMMENT ON COLUMN aifleet.model_alias.model_key IS 'The key it stands for.';
COMMENT ON COLUMN aifleet.model_alias.note IS 'Why they are the same model.';
COMMENT ON COLUMN aifleet.model_alias.shipped IS 'true: shipped by aifleet; false: a row of your own.';

INSERT INTO aifleet.model_alias (name_key, model_key, note, shipped) VALUES
	('llama3.1-8b', 'llama-3.1-8b', 'Llama 3.1 8B as some model markets spell it', true),
	('llama3.1-70b', 'llama-3.1-70b', 'Llama 3.1 70B as some model markets spell it', true),
	('llama3.3-70b', 'llama-3.3-70b', 'Llama 3.3 70B as some model markets spell it', true);

CREATE FUNCTION aifleet.model_key(name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT coalesce((SELECT a.model_key FROM aifleet.model_alias a
			WHERE a.name_key = aifleet.model_key_rules(name)),
		aifleet.model_key_rules(name))
$$;
COMMENT ON FUNCTION aifleet.model_key(text) IS 'Canonical model key of a reported model name: model_key_rules(name), or the key aifleet.model_alias gives for it.';

-- Every model name the inventory holds, with its key: the rules are half
-- a dozen regular expressions, 11 us a call, so the views below look a
-- name up here (one call per distinct name) instead of calling model_key()
-- per row (current_resources of the loader benchmark's 100k instances:
-- 12 s instead of 0.6 s). GROUP BY model makes the name unique, so a query
-- that does not read model_key has the join removed.
CREATE VIEW aifleet.model_keys AS
SELECT m.model, aifleet.model_key(m.model) AS model_key
FROM (SELECT i.model FROM aifleet.instance i UNION ALL SELECT s.model FROM aifleet.service s) m
WHERE m.model IS NOT NULL
GROUP BY m.model;
COMMENT ON VIEW aifleet.model_keys IS 'Every model name of the instances and services (current or not), as reported, with its aifleet.model_key().';
COMMENT ON COLUMN aifleet.model_keys.model IS 'Model name as reported.';
COMMENT ON COLUMN aifleet.model_keys.model_key IS 'aifleet.model_key(model).';

-- ==== The current views gain model_key (appended: every column before it
-- is unchanged) ====

CREATE OR REPLACE VIEW aifleet.current_instances AS
SELECT i.id, i.provider, i.account, i.region, i.product, i.native_id, i.name,
	i.status, i.status_raw, i.charge_type, i.zone, i.spec, i.model,
	i.created_at, i.updated_at, i.expires_at, i.tags,
	i.first_seen_at, i.last_changed_at, ss.last_complete_at AS last_seen_at,
	mk.model_key
FROM aifleet.instance i
LEFT JOIN aifleet.scope_state ss USING (provider, account, region, product)
LEFT JOIN aifleet.model_keys mk ON mk.model = i.model
WHERE i.deleted_at IS NULL;
COMMENT ON COLUMN aifleet.current_instances.model_key IS 'aifleet.model_key(model): the model name comparable across products and clouds.';

CREATE OR REPLACE VIEW aifleet.current_services AS
SELECT s.id, s.provider, s.account, s.region, s.product, s.native_id, s.name,
	s.instance_native_id, i.name AS instance_name, s.model, s.model_version,
	s.status, s.status_raw, s.charge_type, s.replicas, s.created_at, s.updated_at, s.tags,
	s.first_seen_at, s.last_changed_at, ss.last_complete_at AS last_seen_at,
	mk.model_key
FROM aifleet.service s
JOIN aifleet.instance i ON i.id = s.instance_id
LEFT JOIN aifleet.scope_state ss ON (ss.provider, ss.account, ss.region, ss.product) = (s.provider, s.account, s.region, s.product)
LEFT JOIN aifleet.model_keys mk ON mk.model = s.model
WHERE s.deleted_at IS NULL;
COMMENT ON COLUMN aifleet.current_services.model_key IS 'aifleet.model_key(model): the model name comparable across products and clouds.';

CREATE OR REPLACE VIEW aifleet.current_resources AS
SELECT r.id, r.provider, r.account, r.region, r.product, r.owner_kind, r.owner_native_id,
	coalesce(r.instance_id, s.instance_id) AS instance_id,
	coalesce(i.native_id, si.native_id) AS instance_native_id,
	s.native_id AS service_native_id,
	coalesce(s.model, i.model, si.model) AS model,
	r.kind, r.capacity, r.used, r.per_replica, r.unit, r.gpu_model, r.basis,
	r.first_seen_at, r.last_changed_at,
	mk.model_key
FROM aifleet.resource r
LEFT JOIN aifleet.instance i ON i.id = r.instance_id
LEFT JOIN aifleet.service s ON s.id = r.service_id
LEFT JOIN aifleet.instance si ON si.id = s.instance_id
LEFT JOIN aifleet.model_keys mk ON mk.model = coalesce(s.model, i.model, si.model)
WHERE r.deleted_at IS NULL;
COMMENT ON COLUMN aifleet.current_resources.model_key IS 'aifleet.model_key(model).';

-- ==== GPU memory the API does not report ====

-- Per gpu_count resource whose owner reports no gpu_memory_gib of its own
-- and whose GPU name the catalog resolves: cards x memory per card.
-- Each GPU name of the current cards is resolved once (gpu_lookup is a
-- query of its own): once per card, capacity_summary took 43 s instead of
-- 7.7 s on the loader benchmark's 100k instances.
CREATE VIEW aifleet.derived_resources AS
WITH card AS (
	SELECT n.gpu_model, g.gpu_key, g.memory_gib::float8 AS memory_gib
	FROM (SELECT DISTINCT t.gpu_model FROM aifleet.resource t
		WHERE t.kind = 'gpu_count' AND t.gpu_model IS NOT NULL AND t.deleted_at IS NULL) n
	JOIN aifleet.gpu_model g ON g.gpu_key = aifleet.gpu_lookup(n.gpu_model)
)
SELECT r.id, r.provider, r.account, r.region, r.product, r.owner_kind, r.owner_native_id,
	r.instance_id, r.instance_native_id, r.service_native_id, r.model,
	'gpu_memory_gib'::text AS kind, r.capacity * g.memory_gib AS capacity,
	NULL::float8 AS used, r.per_replica * g.memory_gib AS per_replica,
	'GiB'::text AS unit, r.gpu_model, 'catalog'::text AS basis,
	r.first_seen_at, r.last_changed_at, r.model_key, g.gpu_key
FROM aifleet.current_resources r
JOIN card g ON g.gpu_model = r.gpu_model
WHERE r.kind = 'gpu_count'
	AND NOT EXISTS (SELECT 1 FROM aifleet.resource m
		WHERE (m.provider, m.account, m.product, m.owner_kind, m.owner_native_id, m.kind)
			= (r.provider, r.account, r.product, r.owner_kind, r.owner_native_id, 'gpu_memory_gib')
		AND m.deleted_at IS NULL)
	-- a service's cards that are a share of its instance's (a node that
	-- reports cards in total) get their memory with the instance's
	AND NOT (r.owner_kind = 'service' AND EXISTS (SELECT 1 FROM aifleet.resource m
		WHERE m.instance_id = r.instance_id AND m.kind IN ('gpu_count', 'gpu_memory_gib')
		AND m.deleted_at IS NULL));
COMMENT ON VIEW aifleet.derived_resources IS 'GPU memory derived from the GPU catalog where a provider reports the cards and their type but not their memory (TI-ONE): one gpu_memory_gib row per such gpu_count resource, basis catalog. Never where the owner reports gpu_memory_gib itself, nor for a service whose instance reports cards or GPU memory in total (the share of a node). Same columns as current_resources, and the catalog key.';
COMMENT ON COLUMN aifleet.derived_resources.id IS 'The gpu_count resource the figure is derived from (aifleet.resource.id).';
COMMENT ON COLUMN aifleet.derived_resources.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.derived_resources.account IS 'Account label from the configuration.';
COMMENT ON COLUMN aifleet.derived_resources.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.derived_resources.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.derived_resources.owner_kind IS 'instance or service.';
COMMENT ON COLUMN aifleet.derived_resources.owner_native_id IS 'Provider id of the owner.';
COMMENT ON COLUMN aifleet.derived_resources.instance_id IS 'The instance that holds the cards.';
COMMENT ON COLUMN aifleet.derived_resources.instance_native_id IS 'Provider id of that instance.';
COMMENT ON COLUMN aifleet.derived_resources.service_native_id IS 'Provider id of the owning service, if owned by a service.';
COMMENT ON COLUMN aifleet.derived_resources.model IS 'Model served, as reported.';
COMMENT ON COLUMN aifleet.derived_resources.kind IS 'Always gpu_memory_gib.';
COMMENT ON COLUMN aifleet.derived_resources.capacity IS 'Cards (gpu_count capacity) x memory per card (GiB).';
COMMENT ON COLUMN aifleet.derived_resources.used IS 'Always NULL: the catalog knows sizes, not usage.';
COMMENT ON COLUMN aifleet.derived_resources.per_replica IS 'Per-replica cards x memory per card (GiB), where per_replica is reported.';
COMMENT ON COLUMN aifleet.derived_resources.unit IS 'Always GiB.';
COMMENT ON COLUMN aifleet.derived_resources.gpu_model IS 'GPU model as reported.';
COMMENT ON COLUMN aifleet.derived_resources.basis IS 'Always catalog.';
COMMENT ON COLUMN aifleet.derived_resources.first_seen_at IS 'Of the gpu_count resource.';
COMMENT ON COLUMN aifleet.derived_resources.last_changed_at IS 'Of the gpu_count resource.';
COMMENT ON COLUMN aifleet.derived_resources.model_key IS 'aifleet.model_key(model).';
COMMENT ON COLUMN aifleet.derived_resources.gpu_key IS 'Catalog row the memory comes from (aifleet.gpu_model.gpu_key).';

-- 001's capacity_summary, with the catalog's GPU memory counted (from the
-- same owners, so never twice: derived_resources skips owners that report
-- GPU memory) and two columns appended.
CREATE OR REPLACE VIEW aifleet.capacity_summary AS
WITH r AS (
	SELECT cr.*,
		max(cr.gpu_model) OVER (PARTITION BY cr.owner_kind, cr.provider, cr.account, cr.product, cr.owner_native_id) AS owner_gpu_model
	-- the columns counted, no more: current_resources.model_key is a lookup
	-- per row, and the summary keys its groups only
	FROM (SELECT c.provider, c.account, c.region, c.product, c.owner_kind, c.owner_native_id,
			c.instance_id, c.model, c.kind, c.capacity, c.gpu_model, false AS derived
		FROM aifleet.current_resources c
		UNION ALL
		SELECT d.provider, d.account, d.region, d.product, d.owner_kind, d.owner_native_id,
			d.instance_id, d.model, d.kind, d.capacity, d.gpu_model, true
		FROM aifleet.derived_resources d) cr
), counted AS (
	SELECT r.* FROM r
	WHERE r.owner_kind = 'instance'
	   OR NOT EXISTS (SELECT 1 FROM aifleet.resource ir
			WHERE ir.instance_id = r.instance_id AND ir.kind = r.kind AND ir.deleted_at IS NULL)
)
SELECT provider, region, owner_gpu_model AS gpu_model, model,
	count(DISTINCT instance_id) AS instances,
	coalesce(sum(capacity) FILTER (WHERE kind = 'gpu_count'), 0) AS gpu_cards,
	coalesce(sum(capacity) FILTER (WHERE kind = 'gpu_memory_gib'), 0) AS gpu_memory_gib,
	coalesce(sum(capacity) FILTER (WHERE kind = 'cpu_cores'), 0) AS cpu_cores,
	coalesce(sum(capacity) FILTER (WHERE kind = 'memory_gib'), 0) AS memory_gib,
	aifleet.model_key(model) AS model_key,
	coalesce(sum(capacity) FILTER (WHERE kind = 'gpu_memory_gib' AND derived), 0) AS gpu_memory_gib_catalog
FROM counted
GROUP BY provider, region, owner_gpu_model, model;
COMMENT ON COLUMN aifleet.capacity_summary.gpu_memory_gib IS 'Sum of gpu_memory_gib capacity (GiB): as reported, plus what the GPU catalog gives for cards reported without their memory (gpu_memory_gib_catalog).';
COMMENT ON COLUMN aifleet.capacity_summary.model_key IS 'aifleet.model_key(model).';
COMMENT ON COLUMN aifleet.capacity_summary.gpu_memory_gib_catalog IS 'The part of gpu_memory_gib derived from the GPU catalog (aifleet.derived_resources).';

-- What each model occupies now, across clouds. capacity_summary counts
-- what the fleet holds, and a Hologres AI node's cards under the node
-- (which names no model); here a service's share of its node counts for
-- the service's model, and the node keeps only what no service occupies
-- (model_key NULL). The totals of the two views are the same.
CREATE VIEW aifleet.capacity_by_model AS
WITH r AS (
	SELECT c.provider, c.region, c.instance_id, c.service_native_id, c.owner_kind,
		c.owner_native_id, c.account, c.product, c.model, c.model_key, c.kind, c.capacity,
		c.gpu_model
	FROM aifleet.current_resources c
	UNION ALL
	SELECT d.provider, d.region, d.instance_id, d.service_native_id, d.owner_kind,
		d.owner_native_id, d.account, d.product, d.model, d.model_key, d.kind, d.capacity,
		d.gpu_model
	FROM aifleet.derived_resources d
), owned AS (
	SELECT r.*, max(r.gpu_model) OVER (PARTITION BY r.owner_kind, r.provider, r.account,
			r.product, r.owner_native_id) AS owner_gpu_model,
		r.owner_kind = 'service' AND EXISTS (SELECT 1 FROM aifleet.resource ir
			WHERE ir.instance_id = r.instance_id AND ir.kind = r.kind
			AND ir.deleted_at IS NULL) AS share
	FROM r
	WHERE r.kind IN ('gpu_count', 'gpu_memory_gib', 'cpu_cores', 'memory_gib')
), counted AS (
	SELECT o.provider, o.region, o.owner_gpu_model AS gpu_model, o.model_key, o.model,
		o.instance_id, o.service_native_id, o.kind, o.capacity
	FROM owned o
	UNION ALL
	SELECT o.provider, o.region, og.gpu_model, i.model_key, i.model, o.instance_id, NULL,
		o.kind, -o.capacity
	FROM owned o
	JOIN aifleet.current_instances i ON i.id = o.instance_id
	LEFT JOIN LATERAL (SELECT max(g.gpu_model) AS gpu_model FROM aifleet.resource g
		WHERE g.instance_id = o.instance_id AND g.deleted_at IS NULL) og ON true
	WHERE o.share
)
SELECT model_key, provider, region, gpu_model,
	array_agg(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL) AS models,
	count(DISTINCT service_native_id) AS services,
	count(DISTINCT instance_id) AS instances,
	coalesce(sum(capacity) FILTER (WHERE kind = 'gpu_count'), 0) AS gpu_cards,
	coalesce(sum(capacity) FILTER (WHERE kind = 'gpu_memory_gib'), 0) AS gpu_memory_gib,
	coalesce(sum(capacity) FILTER (WHERE kind = 'cpu_cores'), 0) AS cpu_cores,
	coalesce(sum(capacity) FILTER (WHERE kind = 'memory_gib'), 0) AS memory_gib
FROM counted
GROUP BY model_key, provider, region, gpu_model;
COMMENT ON VIEW aifleet.capacity_by_model IS 'Current capacity by model key, provider, region and GPU model: what each model occupies, across clouds and spellings. A service''s share of what its instance reports in total (a Hologres AI node) counts for the service''s model; the instance keeps what no service occupies (under its own model, NULL for a node). GPU memory includes the catalog''s (derived_resources). Same totals as capacity_summary.';
COMMENT ON COLUMN aifleet.capacity_by_model.model_key IS 'aifleet.model_key() of the model served; NULL for capacity no model occupies.';
COMMENT ON COLUMN aifleet.capacity_by_model.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.capacity_by_model.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.capacity_by_model.gpu_model IS 'GPU model of the owner, as reported (NULL for CPU-only or unreported).';
COMMENT ON COLUMN aifleet.capacity_by_model.models IS 'The model names as reported that have this key.';
COMMENT ON COLUMN aifleet.capacity_by_model.services IS 'Distinct services contributing.';
COMMENT ON COLUMN aifleet.capacity_by_model.instances IS 'Distinct instances contributing.';
COMMENT ON COLUMN aifleet.capacity_by_model.gpu_cards IS 'GPU cards (gpu_count).';
COMMENT ON COLUMN aifleet.capacity_by_model.gpu_memory_gib IS 'GPU memory, GiB, reported or from the catalog.';
COMMENT ON COLUMN aifleet.capacity_by_model.cpu_cores IS 'CPU cores.';
COMMENT ON COLUMN aifleet.capacity_by_model.memory_gib IS 'Memory, GiB.';

-- ==== Capacity over time ====

-- Every resource version (closed: its content; open: its current row) and
-- every version of the instance or service that owns it, intersected: a
-- piece is a period during which one resource had one capacity and its
-- owner served one model. Attributed as capacity_by_model does: a
-- service's share of its instance's total for the service's model, and
-- taken off the instance's (a piece of negative capacity), so that the
-- sums are those of what the instances hold. Cut into buckets and clipped
-- to [from_ts, least(to_ts, now())): nothing is counted in the future. A
-- scope collected partially keeps its versions open (nothing unproven is
-- tombstoned), so its last known capacity goes on counting.
CREATE FUNCTION aifleet.capacity_over_time(from_ts timestamptz, to_ts timestamptz, bucket interval)
RETURNS TABLE (bucket_start timestamptz, bucket_end timestamptz, provider text, account text,
	region text, product text, gpu_model text, model_key text,
	avg_gpu_cards double precision, peak_gpu_cards double precision,
	gpu_hours double precision, gpu_memory_gib_hours double precision,
	cpu_core_hours double precision, memory_gib_hours double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- One statement over every resource version of the window, whose joins
-- (a version with its owner's versions, by id) are meant to be hashed:
-- with no statistics yet (a first sync, before autovacuum's ANALYZE) the
-- planner took every overlap for rare and nested the loops, rescanning
-- history for each version -- minutes on the demo database, 0.09 s
-- without. Compiling the plan (JIT) cost 2-3.5 s of 14 on 800k versions,
-- and the sorts spilled to disk with the default work_mem
-- (docs/schema.md, Analytics).
SET jit = off SET work_mem = '64MB' SET enable_nestloop = off AS $$
WITH span AS (
	SELECT tstzrange(from_ts, greatest(from_ts, least(to_ts, now()))) AS r
), bounds AS (
	-- the buckets' starts in order, for width_bucket(): a piece finds its
	-- first and last bucket by binary search, not by meeting every bucket
	SELECT array_agg(b ORDER BY b) AS starts
	FROM generate_series(from_ts, to_ts, bucket) b
	WHERE b < to_ts AND b < now()
), buckets AS (
	SELECT u.i, u.b AS bucket_start, least(u.b + bucket, to_ts) AS bucket_end,
		tstzrange(u.b, least(u.b + bucket, to_ts, now())) AS counted
	FROM bounds, unnest(bounds.starts) WITH ORDINALITY u(b, i)
), rv AS (
	SELECT h.entity_id AS id, h.valid, h.content ->> 'provider' AS provider,
		h.content ->> 'account' AS account, h.content ->> 'region' AS region,
		h.content ->> 'product' AS product, h.content ->> 'owner_kind' AS owner_kind,
		(h.content ->> 'instance_id')::bigint AS instance_id,
		(h.content ->> 'service_id')::bigint AS service_id, h.content ->> 'kind' AS kind,
		coalesce((h.content ->> 'capacity')::float8, 0) AS capacity,
		h.content ->> 'gpu_model' AS gpu_model
	FROM aifleet.history h, span
	WHERE h.entity_type = 'resource' AND h.content IS NOT NULL AND h.valid && span.r
	UNION ALL
	SELECT t.id, h.valid, t.provider, t.account, t.region, t.product, t.owner_kind,
		t.instance_id, t.service_id, t.kind, coalesce(t.capacity, 0), t.gpu_model
	FROM aifleet.history h JOIN aifleet.resource t ON t.id = h.entity_id, span
	WHERE h.entity_type = 'resource' AND h.content IS NULL AND h.valid && span.r
), instance_kind AS (
	SELECT DISTINCT r.instance_id, r.kind FROM aifleet.resource r WHERE r.instance_id IS NOT NULL
), rv_share AS (
	-- share_of: for a service's share of a kind its instance reports in
	-- total (a Hologres AI node), that instance
	SELECT rv.*, CASE WHEN ik.instance_id IS NOT NULL THEN s.instance_id END AS share_of
	FROM rv
	LEFT JOIN aifleet.service s ON s.id = rv.service_id
	LEFT JOIN instance_kind ik ON ik.instance_id = s.instance_id AND ik.kind = rv.kind
	WHERE rv.kind IN ('gpu_count', 'gpu_memory_gib', 'cpu_cores', 'memory_gib')
), ov AS (
	SELECT h.entity_id AS id, h.valid, h.content ->> 'model' AS model
	FROM aifleet.history h, span
	WHERE h.entity_type IN ('instance', 'service') AND h.content IS NOT NULL
		AND h.valid && span.r
	UNION ALL
	SELECT t.id, h.valid, t.model
	FROM aifleet.history h JOIN aifleet.instance t ON t.id = h.entity_id, span
	WHERE h.entity_type = 'instance' AND h.content IS NULL AND h.valid && span.r
	UNION ALL
	SELECT t.id, h.valid, t.model
	FROM aifleet.history h JOIN aifleet.service t ON t.id = h.entity_id, span
	WHERE h.entity_type = 'service' AND h.content IS NULL AND h.valid && span.r
), owner_gpu AS (
	-- the GPU model of an owner's cards, as last recorded: CPU and memory of
	-- a GPU machine land in the same row as its cards
	SELECT coalesce(g.service_id, g.instance_id) AS owner_id, max(g.gpu_model) AS gpu_model,
		bool_or(g.kind = 'gpu_memory_gib') AS reports_memory
	FROM aifleet.resource g
	WHERE g.kind IN ('gpu_count', 'gpu_memory_gib')
	GROUP BY 1
), raw_piece AS (
	-- sign 1: what each owner holds, for the model it serves (GPU memory
	-- from the catalog where the owner reports none and is no share of a
	-- node's); sign -1: a service's share taken off its instance's total,
	-- which keeps what no service occupies (for its own model, if any)
	SELECT rv.provider, rv.account, rv.region, rv.product,
		CASE WHEN x.sign = 1 THEN coalesce(rv.gpu_model, og.gpu_model) ELSE ig.gpu_model END
			AS gpu_model,
		o.model, rv.kind,
		x.sign = 1 AND rv.kind = 'gpu_count' AND rv.share_of IS NULL
			AND NOT coalesce(og.reports_memory, false) AS by_catalog,
		CASE WHEN x.sign = 1 THEN rv.gpu_model END AS card,
		x.sign * rv.capacity AS capacity, rv.valid * o.valid * span.r AS p
	FROM rv_share rv
	CROSS JOIN (VALUES (1), (-1)) x(sign)
	JOIN ov o ON o.id = CASE WHEN x.sign = 1 THEN coalesce(rv.service_id, rv.instance_id)
			ELSE rv.share_of END
		AND o.valid && rv.valid
	LEFT JOIN owner_gpu og ON og.owner_id = coalesce(rv.service_id, rv.instance_id)
	LEFT JOIN owner_gpu ig ON ig.owner_id = rv.share_of
	CROSS JOIN span
	WHERE x.sign = 1 OR rv.share_of IS NOT NULL
), piece AS (
	-- pieces of one group and one period summed first: the resources of a
	-- run share their periods, so what is cut into buckets and swept for
	-- peaks is a few rows per group and run, not one per resource
	SELECT a.provider, a.account, a.region, a.product, a.gpu_model,
		aifleet.model_key(a.model) AS model_key, a.kind, a.capacity,
		a.capacity * (SELECT c.memory_gib::float8 FROM aifleet.gpu_model c
			WHERE a.by_catalog AND c.gpu_key = aifleet.gpu_lookup(a.card)) AS catalog_memory,
		a.p
	FROM (SELECT provider, account, region, product, gpu_model, model, kind, by_catalog, card, p,
			sum(capacity) AS capacity
		FROM raw_piece WHERE NOT isempty(p)
		GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10) a
), cut AS (
	SELECT b.bucket_start, b.bucket_end, b.counted, pc.provider, pc.account, pc.region,
		pc.product, pc.gpu_model, pc.model_key, pc.kind, pc.capacity, pc.catalog_memory,
		lower(pc.p * b.counted) AS lo, upper(pc.p * b.counted) AS hi
	FROM piece pc CROSS JOIN bounds
	CROSS JOIN LATERAL generate_series(width_bucket(lower(pc.p), bounds.starts),
		width_bucket(upper(pc.p), bounds.starts)) n
	JOIN buckets b ON b.i = n
	WHERE NOT isempty(pc.p * b.counted)
), totals AS (
	SELECT bucket_start, bucket_end, counted, provider, account, region, product, gpu_model,
		model_key,
		coalesce(sum(capacity * h) FILTER (WHERE kind = 'gpu_count'), 0) AS gpu_hours,
		coalesce(sum(capacity * h) FILTER (WHERE kind = 'gpu_memory_gib'), 0)
			+ coalesce(sum(catalog_memory * h) FILTER (WHERE kind = 'gpu_count'), 0) AS gpu_memory_gib_hours,
		coalesce(sum(capacity * h) FILTER (WHERE kind = 'cpu_cores'), 0) AS cpu_core_hours,
		coalesce(sum(capacity * h) FILTER (WHERE kind = 'memory_gib'), 0) AS memory_gib_hours
	FROM (SELECT c.*, extract(epoch FROM c.hi - c.lo)::float8 / 3600 AS h FROM cut c) x
	GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
), delta AS (
	-- the change in cards in use at each instant a piece starts or ends:
	-- ends and starts at one instant net out (a version that ends where
	-- the next begins is no peak)
	SELECT bucket_start, provider, account, region, product, gpu_model, model_key, t, sum(d) AS d
	FROM (SELECT bucket_start, provider, account, region, product, gpu_model, model_key, lo AS t,
			capacity AS d FROM cut WHERE kind = 'gpu_count'
		UNION ALL
		SELECT bucket_start, provider, account, region, product, gpu_model, model_key, hi,
			-capacity FROM cut WHERE kind = 'gpu_count') e
	GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), peak AS (
	SELECT bucket_start, provider, account, region, product, gpu_model, model_key,
		max(cards) AS cards
	FROM (SELECT d.*, sum(d.d) OVER (PARTITION BY d.bucket_start, d.provider, d.account,
				d.region, d.product, d.gpu_model, d.model_key ORDER BY d.t) AS cards
		FROM delta d) l
	GROUP BY 1, 2, 3, 4, 5, 6, 7
)
SELECT t.bucket_start, t.bucket_end, t.provider, t.account, t.region, t.product, t.gpu_model,
	t.model_key,
	t.gpu_hours / (extract(epoch FROM upper(t.counted) - lower(t.counted))::float8 / 3600),
	coalesce(greatest(pk.cards, 0), 0), t.gpu_hours, t.gpu_memory_gib_hours, t.cpu_core_hours,
	t.memory_gib_hours
FROM totals t
LEFT JOIN peak pk ON (pk.bucket_start, pk.provider, pk.account, pk.region, pk.product)
		= (t.bucket_start, t.provider, t.account, t.region, t.product)
	AND pk.gpu_model IS NOT DISTINCT FROM t.gpu_model
	AND pk.model_key IS NOT DISTINCT FROM t.model_key
ORDER BY 1, 3, 4, 5, 6, 7, 8
$$;
COMMENT ON FUNCTION aifleet.capacity_over_time(timestamptz, timestamptz, interval) IS 'Per bucket of [from_ts, to_ts) and per provider, account, region, product, GPU model and model key: average and peak GPU cards, GPU-hours, GPU-memory GiB-hours (the catalog''s where only the type is reported), CPU core-hours and memory GiB-hours, from the validity periods of resource versions, attributed to models as in capacity_by_model. Nothing after now() is counted; a partially collected scope counts its last known capacity. docs/schema.md, Analytics.';

CREATE FUNCTION aifleet.changes_by_day(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (day timestamptz, provider text, account text, region text, product text,
	entity_type text, created bigint, updated bigint, deleted bigint, restored bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT date_trunc('day', f.time, 'UTC'), f.provider, f.account, f.region, f.product,
		f.entity_type,
		count(*) FILTER (WHERE f.change = 'created'),
		count(*) FILTER (WHERE f.change = 'updated'),
		count(*) FILTER (WHERE f.change = 'deleted'),
		count(*) FILTER (WHERE f.change = 'restored')
	FROM aifleet.change_feed f
	WHERE f.time >= from_ts AND f.time < to_ts
	GROUP BY 1, 2, 3, 4, 5, 6
	ORDER BY 1, 2, 3, 4, 5, 6
$$;
COMMENT ON FUNCTION aifleet.changes_by_day(timestamptz, timestamptz) IS 'Changes recorded in [from_ts, to_ts) per UTC day, scope and entity type: created, updated, deleted, restored (aifleet.change_feed counted).';

-- ==== aifleet report ====

-- A report without --since lists the changes since the last one recorded.
CREATE TABLE aifleet.report_run (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	reported_at timestamptz NOT NULL DEFAULT now(),
	since timestamptz NOT NULL,
	through_run_id bigint,
	format text NOT NULL CHECK (format IN ('text', 'markdown', 'json'))
);
COMMENT ON TABLE aifleet.report_run IS 'One row per aifleet report that was delivered and recorded (not with --no-record): the next report without --since lists the changes since the last one ended.';
COMMENT ON COLUMN aifleet.report_run.id IS 'Report number.';
COMMENT ON COLUMN aifleet.report_run.reported_at IS 'End of the report''s changes window: the time of its snapshot.';
COMMENT ON COLUMN aifleet.report_run.since IS 'Start of its changes window (--since, the end of the report before, or 24 hours before the first).';
COMMENT ON COLUMN aifleet.report_run.through_run_id IS 'Newest sync_run the report saw (NULL: none). A run still open at reported_at stamps its changes before it; the next report starts early enough to include them.';
COMMENT ON COLUMN aifleet.report_run.format IS 'text, markdown or json.';

-- ==== The reader ====
GRANT SELECT ON aifleet.gpu_model, aifleet.gpu_alias, aifleet.model_alias,
	aifleet.derived_resources, aifleet.capacity_by_model, aifleet.report_run,
	aifleet.model_keys TO aifleet_reader;
REVOKE EXECUTE ON FUNCTION aifleet.capacity_over_time(timestamptz, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aifleet.capacity_over_time(timestamptz, timestamptz, interval) TO aifleet_reader;
