// deploy/kubernetes, checked offline (tests/kubernetes/CMakeLists.txt runs it).
//
//   node check.mjs schema   --manifests DIR --node-dir DIR
//   node check.mjs commands --manifests DIR --node-dir DIR --aifleet BIN
//
// --node-dir holds the node_modules that `npm ci` made from this
// directory's package.json and package-lock.json (exact versions):
// kubernetes-models (the Kubernetes OpenAPI schemas, compiled into ajv
// validators, and the TypeScript interfaces generated from the same
// schemas) twice -- 4.5.1 for Kubernetes 1.33.0 and, as
// kubernetes-models-1.27, 4.4.2 for 1.27.1, the newest schemas older than
// the 1.28 these manifests are for: a field or value added after 1.27
// (FailIndex, backoffLimitPerIndex) fails there -- typescript (its compiler
// checks the manifests against those interfaces) and yaml (the parser).
// The two share @kubernetes-models/apimachinery (ObjectMeta, LabelSelector:
// unchanged in these fields). Nothing here uses the network.
//
// schema: every document of every *.yaml in --manifests
//   1. parses as YAML 1.1 -- what the API server's YAML reader
//      (sigs.k8s.io/yaml) speaks: 0444 is octal -- with no duplicate key and
//      no alias;
//   2. passes its kind's JSON schema (types, formats, enums, required
//      fields) of each Kubernetes version: kubernetes-models' validator;
//   3. passes strict typing, for each version: tsc compiles `const doc: ICronJob = <the
//      document as JSON>` and rejects any field the schema does not know
//      (the JSON schemas alone accept unknown fields, as kubectl without
//      --validate=strict would);
//   4. passes what the API server checks beyond the schemas for the fields
//      these manifests use, and this project's rules (non-root, read-only
//      root file system, resources, Forbid, references between the files).
// Then deliberately broken copies of the manifests go through the same
// checks, each of which must be rejected by the check it targets: the
// test cannot pass because a check accepts everything.
//
// commands: every container of every CronJob and Job, for each completion
// index of an Indexed Job, runs the real aifleet in an emulation of its
// pod: the ConfigMap's files at their mount paths with the volume's mode,
// emptyDirs as writable directories, the env of the container spec (the
// Secret's placeholder values, the completion index, the variables ACK's
// pod identity webhook injects for the service account), $(VAR) expanded
// in args as the kubelet does, every absolute path mapped into a private
// directory. See podRuns() for what each run and its expected exit code
// proves. Broken pods (BROKEN_PODS) must then be refused by those runs.
//
// Every file is made under one temporary directory, removed at the end
// however the test ends (but for SIGKILL).

import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

// ---- command line, reporting, cleanup ----------------------------------

function parseArgs(argv) {
	const mode = argv[0];
	const opts = {};
	for (let i = 1; i < argv.length; i += 2) {
		if (!argv[i].startsWith("--") || i + 1 >= argv.length)
			usage(`bad argument ${argv[i]}`);
		opts[argv[i].slice(2)] = argv[i + 1];
	}
	if (!["schema", "commands"].includes(mode) || !opts.manifests || !opts["node-dir"] ||
	    (mode === "commands" && !opts.aifleet))
		usage("missing arguments");
	return { mode, opts };
}

function usage(why) {
	console.error(`check.mjs: ${why}\nusage: node check.mjs schema|commands --manifests DIR ` +
		      `--node-dir DIR [--aifleet BIN]`);
	process.exit(2);
}

let passed = 0, failed = 0;

function ok(what) {
	passed++;
	console.log(`ok - ${what}`);
}

function notOk(what, why) {
	failed++;
	console.log(`not ok - ${what}`);
	for (const line of String(why).split("\n"))
		console.log(`    ${line}`);
}

// One check: fn returns nothing or [] (pass), a list of problems, or
// { notes } (pass, with lines to show), or throws.
function check(what, fn) {
	let problems, notes = [];
	try {
		problems = fn();
	} catch (e) {
		problems = [e && e.stack && !(e instanceof CheckError) ? e.stack : String(e.message)];
	}
	if (problems && !Array.isArray(problems)) {
		notes = problems.notes || [];
		problems = [];
	}
	if (problems && problems.length)
		notOk(what, problems.join("\n"));
	else
		ok(what);
	for (const n of notes)
		console.log(`    # ${n}`);
	return !(problems && problems.length);
}

class CheckError extends Error {}

function fail(msg) {
	throw new CheckError(msg);
}

let scratch = null;

function scratchDir() {
	if (!scratch)
		scratch = fs.mkdtempSync(path.join(os.tmpdir(), "aifleet-k8s-"));
	return scratch;
}

function cleanup() {
	if (scratch) {
		fs.rmSync(scratch, { recursive: true, force: true });
		scratch = null;
	}
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"])
	process.on(sig, () => {
		cleanup();
		process.exit(128 + os.constants.signals[sig]);
	});

// ---- loading -------------------------------------------------------------

// Every document of every *.yaml / *.yml, in file order.
function loadManifests(YAML, dir) {
	const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
	if (!files.length)
		fail(`no manifests in ${dir}`);
	const docs = [];
	for (const file of files)
		docs.push(...parseManifestText(YAML, fs.readFileSync(path.join(dir, file), "utf8"), file));
	return docs;
}

function parseManifestText(YAML, text, file) {
	const docs = [];
	const parsed = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true,
						      prettyErrors: true });
	if (!Array.isArray(parsed))
		fail(`${file}: not a YAML stream`);
	parsed.forEach((d, i) => {
		const problems = [...d.errors, ...d.warnings].map((e) => e.message);
		if (problems.length)
			fail(`${file}: document ${i + 1}: ${problems.join("; ")}`);
		const obj = d.toJS({ maxAliasCount: 0 });
		if (obj === null || obj === undefined)
			return; // an empty document (a trailing ---)
		docs.push({ file, index: i + 1, obj });
	});
	return docs;
}

function docName(d) {
	const o = d.obj || {};
	return `${d.file}: ${o.kind || "?"} ${(o.metadata && o.metadata.name) || "?"}`;
}

// The schema sets: the package (an npm alias for the older one) and the
// Kubernetes version its CHANGELOG gives (4.5.0: "Update schema version to
// v1.33.0"; 4.3.0: "to v1.27.1", unchanged up to 4.4.2).
//
// adjust: the 1.27 OpenAPI marks a pod failure policy rule's onPodConditions
// as required, which the API server never enforced (a rule takes
// onExitCodes or onPodConditions) and kubernetes/kubernetes#120204 ("Mark
// Job onPodConditions as optional", back-ported) corrected. For that set
// only, a rule with onExitCodes gets an empty onPodConditions before it is
// checked, so that the mistake neither fails nor masks (tsc names one
// problem per document) anything else.
const SCHEMA_SETS = [
	{ pkg: "kubernetes-models", version: "4.5.1", k8s: "1.33.0", adjust: (o) => o },
	{ pkg: "kubernetes-models-1.27", version: "4.4.2", k8s: "1.27.1", adjust: (o) => {
		const job = workload(o);
		for (const rule of (job && job.podFailurePolicy && job.podFailurePolicy.rules) || [])
			if (rule && rule.onExitCodes && !("onPodConditions" in rule))
				rule.onPodConditions = [];
		return o;
	} },
];

// apiVersion + kind -> kubernetes-models module ("v1" is the core group).
function modelPath(pkg, apiVersion, kind) {
	if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(kind))
		return null;
	return `${pkg}/${apiVersion}/${kind}`;
}

// ---- stage 2: JSON schema ----------------------------------------------

function schemaProblems(req, set, obj) {
	const mod = modelPath(set.pkg, obj.apiVersion, obj.kind);
	let Model;
	try {
		Model = mod && req(mod)[obj.kind];
	} catch (e) {
		Model = null;
	}
	if (!Model)
		return [`no Kubernetes ${set.k8s} schema for apiVersion ${obj.apiVersion}, kind ${obj.kind}`];
	try {
		new Model(obj).validate();
	} catch (e) {
		if (!e.errors)
			throw e;
		return e.errors.map((x) => `schema ${set.k8s}: ${x.instancePath || "/"} ${x.message}` +
				    (x.params && x.params.allowedValues
					    ? ` (${x.params.allowedValues.join(", ")})` : ""));
	}
	return [];
}

// ---- stage 3: strict typing (unknown fields) ---------------------------

// docs: [{obj, ...}] -> one list of problems per document, from one tsc run.
function strictProblems(nodeDir, set, docs) {
	const dir = fs.mkdtempSync(path.join(scratchDir(), "tsc-"));
	fs.symlinkSync(path.join(nodeDir, "node_modules"), path.join(dir, "node_modules"), "dir");
	const files = [];
	const problems = docs.map(() => []);
	docs.forEach((d, i) => {
		const mod = modelPath(set.pkg, d.obj.apiVersion, d.obj.kind);
		if (!mod) {
			problems[i].push(`strict ${set.k8s}: no apiVersion/kind to type it by`);
			return;
		}
		const file = `doc${i}.ts`;
		files.push(file);
		fs.writeFileSync(path.join(dir, file),
				 `import type { I${d.obj.kind} } from ${JSON.stringify(mod)};\n` +
				 `export const doc: I${d.obj.kind} = ${JSON.stringify(d.obj, null, 2)};\n`);
	});
	fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({
		compilerOptions: { strict: true, noEmit: true, target: "es2022", module: "nodenext",
				   moduleResolution: "nodenext", types: [], skipLibCheck: true },
		files,
	}));
	const tsc = path.join(nodeDir, "node_modules", "typescript", "bin", "tsc");
	const r = spawnSync(process.execPath, [tsc, "-p", path.join(dir, "tsconfig.json"), "--pretty", "false"],
			    { encoding: "utf8", timeout: 300000 });
	if (r.error)
		throw r.error;
	const out = `${r.stdout}${r.stderr}`;
	let matched = 0;
	for (const line of out.split("\n")) {
		const m = /(?:^|\/)doc(\d+)\.ts\((\d+),\d+\): error (TS\d+: .*)$/.exec(line);
		if (!m)
			continue;
		matched++;
		const i = Number(m[1]);
		const src = fs.readFileSync(path.join(dir, `doc${i}.ts`), "utf8").split("\n");
		problems[i].push(`strict ${set.k8s}: ${m[3]} (at: ${(src[Number(m[2]) - 1] || "").trim()})`);
	}
	// tsc failed for a reason that is no document's (a broken install): say so
	if (r.status !== 0 && matched === 0)
		fail(`tsc exited ${r.status} without naming a document:\n${out}`);
	if (r.status === 0 && matched !== 0)
		fail(`tsc exited 0 but reported errors:\n${out}`);
	fs.rmSync(dir, { recursive: true, force: true });
	return problems;
}

// ---- stage 4: the API server's other checks and this project's rules ---

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const FIELD_PATHS = [/^metadata\.(name|namespace|uid)$/, /^metadata\.(labels|annotations)\['[^']+'\]$/,
		     /^spec\.(nodeName|serviceAccountName)$/, /^status\.(hostIP|hostIPs|podIP|podIPs)$/];
const NAMESPACED = new Set(["ConfigMap", "Secret", "ServiceAccount", "CronJob", "Job"]);

function quantity(q) {
	const m = /^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
	if (!m)
		return NaN;
	const mult = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6,
		       G: 1e9, T: 1e12 };
	return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
}

// What the documents define, for the references between them.
function contextOf(docs) {
	const ctx = { namespaces: new Map(), configMaps: new Map(), secrets: new Map(),
		      serviceAccounts: new Map() };
	for (const { obj } of docs) {
		const name = obj.metadata && obj.metadata.name;
		if (obj.kind === "Namespace")
			ctx.namespaces.set(name, obj);
		else if (obj.kind === "ConfigMap")
			ctx.configMaps.set(name, obj);
		else if (obj.kind === "Secret")
			ctx.secrets.set(name, obj);
		else if (obj.kind === "ServiceAccount")
			ctx.serviceAccounts.set(name, obj);
	}
	return ctx;
}

function secretValue(secret, key) {
	if (secret.stringData && key in secret.stringData)
		return String(secret.stringData[key]);
	if (secret.data && key in secret.data)
		return Buffer.from(secret.data[key], "base64").toString("utf8");
	return undefined;
}

// The pod template of a workload and its job spec, or null.
function workload(obj) {
	if (obj.kind === "CronJob")
		return obj.spec && obj.spec.jobTemplate && obj.spec.jobTemplate.spec;
	if (obj.kind === "Job")
		return obj.spec;
	return null;
}

function policyProblems(obj, ctx) {
	const p = [];
	const meta = obj.metadata || {};
	const name = meta.name || "";
	if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253)
		p.push(`metadata.name '${name}' is not a DNS-1123 subdomain`);
	if (obj.kind === "Namespace" && !DNS1123_LABEL.test(name))
		p.push(`a namespace's name must be a DNS-1123 label`);
	if (obj.kind === "CronJob" && name.length > 52)
		p.push(`a CronJob's name has at most 52 characters`);
	if (NAMESPACED.has(obj.kind) && !ctx.namespaces.has(meta.namespace))
		p.push(`metadata.namespace '${meta.namespace}' is not the Namespace of namespace.yaml`);
	const labels = meta.labels || {};
	if (labels["app.kubernetes.io/name"] !== "aifleet")
		p.push(`label app.kubernetes.io/name is not aifleet`);
	for (const [k, v] of Object.entries({ ...labels, ...(meta.annotations || {}) }))
		if (!QUALIFIED_NAME.test(k))
			p.push(`label or annotation key '${k}' is not a qualified name`);
	for (const [k, v] of Object.entries(labels))
		if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v))
			p.push(`label ${k}: '${v}' is not a valid label value`);

	if (obj.kind === "Namespace" &&
	    labels["pod-security.kubernetes.io/enforce"] !== "restricted")
		p.push(`the namespace does not enforce Pod Security "restricted"`);
	if (obj.kind === "ConfigMap")
		for (const k of Object.keys(obj.data || {}))
			if (!CONFIG_KEY.test(k))
				p.push(`ConfigMap key '${k}' is not a valid key`);
	if (obj.kind === "Secret") {
		for (const [k, v] of Object.entries(obj.stringData || {})) {
			if (!CONFIG_KEY.test(k))
				p.push(`Secret key '${k}' is not a valid key`);
			if (!String(v).includes("REPLACE-ME"))
				p.push(`Secret key ${k}: an example's value must be a REPLACE-ME placeholder`);
		}
		if (obj.data && Object.keys(obj.data).length)
			p.push(`the example Secret uses stringData only (placeholders in clear)`);
	}
	if (obj.kind === "CronJob") {
		const s = obj.spec || {};
		if (s.concurrencyPolicy !== "Forbid")
			p.push(`spec.concurrencyPolicy is not Forbid`);
		if (typeof s.schedule !== "string" || s.schedule.trim().split(/\s+/).length !== 5)
			p.push(`spec.schedule is not five cron fields`);
		for (const k of ["startingDeadlineSeconds", "successfulJobsHistoryLimit",
				 "failedJobsHistoryLimit"])
			if (!(k in s))
				p.push(`spec.${k} is not set`);
	}
	const job = workload(obj);
	if (job)
		p.push(...jobProblems(job, ctx));
	return p;
}

function jobProblems(job, ctx) {
	const p = [];
	const tmpl = (job.template && job.template.spec) || {};
	const containers = tmpl.containers || [];
	if (!(job.activeDeadlineSeconds > 0))
		p.push(`job: activeDeadlineSeconds is not set`);
	if (!("backoffLimit" in job))
		p.push(`job: backoffLimit is not set`);
	if (!["Never", "OnFailure"].includes(tmpl.restartPolicy))
		p.push(`job: restartPolicy must be Never or OnFailure`);
	if (job.completionMode === "Indexed") {
		if (!(job.completions > 0))
			p.push(`job: an Indexed Job needs completions`);
		if (job.parallelism > job.completions)
			p.push(`job: parallelism exceeds completions`);
	}
	if (job.podFailurePolicy) {
		if (tmpl.restartPolicy !== "Never")
			p.push(`job: podFailurePolicy needs restartPolicy Never`);
		for (const [i, rule] of (job.podFailurePolicy.rules || []).entries()) {
			const where = `job: podFailurePolicy.rules[${i}]`;
			if (!!rule.onExitCodes === !!rule.onPodConditions)
				p.push(`${where}: exactly one of onExitCodes and onPodConditions`);
			if (rule.action === "FailIndex" && !("backoffLimitPerIndex" in job))
				p.push(`${where}: FailIndex needs backoffLimitPerIndex`);
			const ec = rule.onExitCodes;
			if (ec) {
				const v = ec.values || [];
				if (ec.containerName && !containers.some((c) => c.name === ec.containerName))
					p.push(`${where}: no container ${ec.containerName}`);
				if (!v.length || v.length > 255)
					p.push(`${where}: 1 to 255 values`);
				if (v.some((x, j) => j > 0 && x <= v[j - 1]))
					p.push(`${where}: values must be ordered and unique`);
				if (ec.operator === "In" && v.includes(0))
					p.push(`${where}: 0 cannot be In`);
			}
		}
	}
	p.push(...podProblems(tmpl, ctx));
	return p;
}

function podProblems(pod, ctx) {
	const p = [];
	const sc = pod.securityContext || {};
	if (!ctx.serviceAccounts.has(pod.serviceAccountName))
		p.push(`pod: serviceAccountName '${pod.serviceAccountName}' is not serviceaccount.yaml's`);
	if (pod.automountServiceAccountToken !== false)
		p.push(`pod: automountServiceAccountToken is not false (aifleet never calls the API)`);
	if (sc.runAsNonRoot !== true || sc.runAsUser !== 10001)
		p.push(`pod: securityContext must say runAsNonRoot: true, runAsUser: 10001`);
	if (!sc.seccompProfile || sc.seccompProfile.type !== "RuntimeDefault")
		p.push(`pod: seccompProfile is not RuntimeDefault`);
	const volumes = new Map();
	for (const v of pod.volumes || []) {
		if (!DNS1123_LABEL.test(v.name) || volumes.has(v.name))
			p.push(`pod: volume name '${v.name}' is not a unique DNS-1123 label`);
		volumes.set(v.name, v);
		if (v.configMap) {
			const cm = ctx.configMaps.get(v.configMap.name);
			const mode = v.configMap.defaultMode;
			if (!cm)
				p.push(`pod: volume ${v.name}: no ConfigMap ${v.configMap.name}`);
			for (const it of v.configMap.items || [])
				if (cm && !(it.key in (cm.data || {})))
					p.push(`pod: volume ${v.name}: ConfigMap ${v.configMap.name} has no key ${it.key}`);
			if (!Number.isInteger(mode) || mode < 0 || mode > 0o777 || (mode & 0o022))
				p.push(`pod: volume ${v.name}: defaultMode ${mode} must be set, without write ` +
				       `bits for group and others (aifleet refuses such a configuration)`);
		} else if (!v.emptyDir) {
			p.push(`pod: volume ${v.name}: only configMap and emptyDir volumes are expected`);
		}
	}
	const names = new Set();
	for (const c of pod.containers || []) {
		const where = `container ${c.name}`;
		if (!DNS1123_LABEL.test(c.name) || names.has(c.name))
			p.push(`${where}: the name is not a unique DNS-1123 label`);
		names.add(c.name);
		if (!c.image)
			p.push(`${where}: no image`);
		if (c.command)
			p.push(`${where}: sets command; the image's entrypoint is aifleet, give args only`);
		const csc = c.securityContext || {};
		if (csc.allowPrivilegeEscalation !== false)
			p.push(`${where}: allowPrivilegeEscalation is not false`);
		if (csc.readOnlyRootFilesystem !== true)
			p.push(`${where}: readOnlyRootFilesystem is not true`);
		if (csc.privileged)
			p.push(`${where}: privileged`);
		if (!csc.capabilities || !(csc.capabilities.drop || []).includes("ALL") ||
		    (csc.capabilities.add || []).length)
			p.push(`${where}: capabilities must drop ALL and add none`);
		const res = c.resources || {};
		for (const r of ["cpu", "memory"]) {
			const req = res.requests && res.requests[r], lim = res.limits && res.limits[r];
			if (req === undefined || lim === undefined)
				p.push(`${where}: resources.requests and resources.limits must both set ${r}`);
			else if (!(quantity(req) <= quantity(lim)))
				p.push(`${where}: ${r} request ${req} exceeds its limit ${lim}`);
		}
		const env = new Set();
		for (const e of c.env || []) {
			if (!ENV_NAME.test(e.name) || env.has(e.name))
				p.push(`${where}: env ${e.name} is not a unique valid name`);
			env.add(e.name);
			const vf = e.valueFrom;
			if (vf && vf.secretKeyRef) {
				const s = ctx.secrets.get(vf.secretKeyRef.name);
				if (!s || secretValue(s, vf.secretKeyRef.key) === undefined)
					p.push(`${where}: env ${e.name}: Secret ${vf.secretKeyRef.name} has no key ` +
					       `${vf.secretKeyRef.key} (secret.example.yaml)`);
			}
			if (vf && vf.configMapKeyRef) {
				const cm = ctx.configMaps.get(vf.configMapKeyRef.name);
				if (!cm || !((vf.configMapKeyRef.key) in (cm.data || {})))
					p.push(`${where}: env ${e.name}: no ConfigMap key ${vf.configMapKeyRef.key}`);
			}
			if (vf && vf.fieldRef && !FIELD_PATHS.some((re) => re.test(vf.fieldRef.fieldPath)))
				p.push(`${where}: env ${e.name}: fieldPath ${vf.fieldRef.fieldPath} is not one ` +
				       `the downward API gives`);
		}
		for (const a of c.args || [])
			for (const m of String(a).matchAll(/\$\(([^)]*)\)/g))
				if (!env.has(m[1]))
					p.push(`${where}: args refer to $(${m[1]}), which the container's env does ` +
					       `not define: the kubelet would pass it on verbatim`);
		const mounts = new Set();
		let writableTmp = false;
		for (const m of c.volumeMounts || []) {
			const v = volumes.get(m.name);
			if (!v)
				p.push(`${where}: volumeMount ${m.name} has no volume`);
			if (!String(m.mountPath).startsWith("/") || mounts.has(m.mountPath))
				p.push(`${where}: mountPath ${m.mountPath} is not a unique absolute path`);
			mounts.add(m.mountPath);
			if (v && v.configMap && m.readOnly !== true)
				p.push(`${where}: the configuration is mounted without readOnly`);
			const tmpdir = (c.env || []).find((e) => e.name === "TMPDIR");
			if (v && v.emptyDir && !m.readOnly &&
			    m.mountPath === ((tmpdir && tmpdir.value) || "/tmp"))
				writableTmp = true;
		}
		if ((c.args || []).includes("sync") && !writableTmp)
			p.push(`${where}: sync needs a writable emptyDir at $TMPDIR (its spool; the root ` +
			       `file system is read-only)`);
	}
	return p;
}

// ---- schema mode -----------------------------------------------------------

// The document checks, in order; a document passes when none has a problem.
// -> per document { "schema 1.33.0": [...], "strict 1.33.0": [...], ...,
// policy: [...] }
function validateDocs(req, nodeDir, docs, ctx) {
	const results = docs.map((d) => ({ policy: policyProblems(d.obj, ctx) }));
	for (const set of SCHEMA_SETS) {
		const adjusted = docs.map((d) => ({ ...d, obj: set.adjust(clone(d.obj)) }));
		const strict = strictProblems(nodeDir, set, adjusted);
		adjusted.forEach((d, i) => {
			results[i][`schema ${set.k8s}`] = schemaProblems(req, set, d.obj);
			results[i][`strict ${set.k8s}`] = strict[i];
		});
	}
	return results;
}

// The checks a negative targets: "schema" and "strict" are those of every
// schema set, "strict 1.27.1" one of them.
function targeted(stage) {
	return ["schema", "strict"].includes(stage) ? SCHEMA_SETS.map((s) => `${stage} ${s.k8s}`)
		: [stage];
}

function clone(x) {
	return JSON.parse(JSON.stringify(x));
}

function podOf(obj) {
	return workload(obj).template.spec;
}

// Deliberately broken copies: [description, file, the check that must
// reject it, how to break the document (returns nothing) | text edit].
const BROKEN = [
	["a misspelled field (securityContext.runAsNonRot)", "cronjob.yaml", "strict", (o) => {
		const sc = podOf(o).securityContext;
		sc.runAsNonRot = sc.runAsNonRoot;
		delete sc.runAsNonRoot;
	}],
	["an unknown container field (argz for args)", "cronjob-sharded.yaml", "strict", (o) => {
		const c = podOf(o).containers[0];
		c.argz = c.args;
		delete c.args;
	}],
	["a field at the wrong level (timeZone inside the jobTemplate)", "cronjob.yaml", "strict", (o) => {
		o.spec.jobTemplate.spec.timeZone = o.spec.timeZone;
		delete o.spec.timeZone;
	}],
	["a number as a string (backoffLimit: \"3\")", "job-migrate.yaml", "schema", (o) => {
		o.spec.backoffLimit = "3";
	}],
	["a value outside the enum (concurrencyPolicy: Never)", "cronjob.yaml", "schema", (o) => {
		o.spec.concurrencyPolicy = "Never";
	}],
	["a required field missing (the container's name)", "job-migrate.yaml", "schema", (o) => {
		delete podOf(o).containers[0].name;
	}],
	["a list where an object belongs (resources.limits as a list)", "cronjob.yaml", "schema", (o) => {
		const r = podOf(o).containers[0].resources;
		r.limits = Object.entries(r.limits).map(([k, v]) => `${k}=${v}`);
	}],
	["a field and a value newer than 1.27 (backoffLimitPerIndex, FailIndex)", "cronjob-sharded.yaml",
	 "strict 1.27.1", (o) => {
		const job = o.spec.jobTemplate.spec;
		job.backoffLimitPerIndex = 1;
		job.podFailurePolicy.rules[0].action = "FailIndex";
	}],
	["a writable root file system", "cronjob.yaml", "policy", (o) => {
		podOf(o).containers[0].securityContext.readOnlyRootFilesystem = false;
	}],
	["a Secret key that secret.example.yaml lacks", "cronjob-sharded.yaml", "policy", (o) => {
		podOf(o).containers[0].env.find((e) => e.name === "PGPASSWORD")
			.valueFrom.secretKeyRef.key = "PG_PASSWORD";
	}],
	["the index in args without its env entry", "cronjob-sharded.yaml", "policy", (o) => {
		const c = podOf(o).containers[0];
		c.env = c.env.filter((e) => e.name !== "JOB_COMPLETION_INDEX");
	}],
	["a group-writable configuration (defaultMode: 0664)", "job-migrate.yaml", "policy", (o) => {
		podOf(o).volumes.find((v) => v.configMap).configMap.defaultMode = 0o664;
	}],
	["a duplicate key (concurrencyPolicy twice)", "cronjob.yaml", "yaml",
	 { text: (t) => t.replace(/^( *)concurrencyPolicy: Forbid$/m, "$1concurrencyPolicy: Forbid\n$1concurrencyPolicy: Allow") }],
];

function schemaMode(opts) {
	const req = createRequire(path.join(path.resolve(opts["node-dir"]), "package.json"));
	const YAML = req("yaml");
	const nodeDir = path.resolve(opts["node-dir"]);
	for (const set of SCHEMA_SETS) {
		const v = req(`${set.pkg}/package.json`).version;
		if (v !== set.version)
			fail(`${set.pkg} is ${v}, not ${set.version}: update SCHEMA_SETS with its Kubernetes version`);
		console.log(`# ${set.pkg}: kubernetes-models ${v}, the Kubernetes ${set.k8s} schemas`);
	}
	console.log(`# typescript ${req("typescript/package.json").version}, ` +
		    `yaml ${req("yaml/package.json").version}`);
	let docs;
	if (!check(`every *.yaml in ${opts.manifests} parses as YAML 1.1 (no duplicate key, no alias)`,
		   () => { docs = loadManifests(YAML, opts.manifests); }))
		return;
	const ctx = contextOf(docs);

	// the broken copies, validated in the same tsc run as the real documents
	const broken = [];
	for (const [what, file, stage, edit] of BROKEN) {
		const orig = docs.find((d) => d.file === file && workload(d.obj));
		if (!orig) {
			notOk(`negative: ${what}`, `no workload in ${file} to break`);
			continue;
		}
		if (typeof edit === "function") {
			const obj = clone(orig.obj);
			edit(obj);
			broken.push({ what, stage, orig, doc: { file: `${file} (broken)`, index: 1, obj } });
		} else {
			const text = fs.readFileSync(path.join(opts.manifests, file), "utf8");
			const edited = edit.text(text);
			if (edited === text)
				fail(`negative: ${what}: the edit changed nothing in ${file}`);
			let parseError = null;
			try {
				parseManifestText(YAML, edited, `${file} (broken)`);
			} catch (e) {
				parseError = e.message;
			}
			broken.push({ what, stage, yamlError: parseError });
		}
	}
	const typed = broken.filter((b) => b.doc);
	const results = validateDocs(req, nodeDir, [...docs, ...typed.map((b) => b.doc)], ctx);

	docs.forEach((d, i) => {
		check(`${docName(d)} (document ${d.index}): ` +
		      `${Object.keys(results[i]).join(", ")}`, () => Object.values(results[i]).flat());
	});
	// a broken copy must give the targeted check a problem its original
	// does not have (line numbers aside)
	const bare = (m) => m.replace(/ \(at: .*\)$/, "");
	typed.forEach((b, j) => {
		const r = results[docs.length + j];
		const was = results[docs.indexOf(b.orig)];
		const stages = targeted(b.stage);
		check(`negative: ${b.doc.file}: ${b.what} is rejected by ${stages.join(" and ")}`, () => {
			for (const st of stages)
				r[st] = r[st].filter((m) => !was[st].map(bare).includes(bare(m)));
			const missed = stages.filter((st) => !r[st].length);
			if (missed.length)
				return [`accepted by ${missed.join(", ")}; all checks said: ${JSON.stringify(r)}`];
			return { notes: stages.map((st) => `rejected: ${r[st][0]}`) };
		});
	});
	for (const b of broken.filter((x) => !x.doc))
		check(`negative: ${b.what} is rejected by the YAML parser`, () => {
			if (!b.yamlError)
				return ["accepted"];
			return { notes: [`rejected: ${b.yamlError.split("\n")[0]}`] };
		});
	// why both: the JSON schemas accept unknown fields, only tsc refuses them
	const unknown = typed.find((b) => b.stage === "strict");
	if (unknown && !SCHEMA_SETS.some((set) => schemaProblems(req, set, set.adjust(clone(unknown.doc.obj))).length))
		console.log(`# the JSON schema check alone accepts "${unknown.what}": the strict check is ` +
			    `what refuses unknown fields`);
}

// ---- commands mode ---------------------------------------------------------

// Options of aifleet that take a value (src/cli/main.c), and those that
// only `sync` takes (check-config refuses them: exit 64).
const WITH_VALUE = new Set(["-c", "--config", "--db", "--log-format", "--log-level", "--only",
			    "--account", "--shard", "--save-raw", "--from-raw", "--allow-deletes",
			    "--metrics-file", "--runs", "--format", "--since", "--stale-after"]);
const SYNC_ONLY = new Set(["-n", "--dry-run", "--save-raw", "--from-raw", "--wait", "--allow-deletes",
			   "--metrics-file", "--progress", "--no-progress"]);
const COMMANDS = new Set(["sync", "migrate", "status", "report", "check-config", "version", "help"]);

// argv -> [{opt, value, raw: [..]}, ...] and the index of the command word.
function splitArgv(argv) {
	const items = [];
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const eq = a.startsWith("--") ? a.indexOf("=") : -1;
		const opt = eq > 0 ? a.slice(0, eq) : a;
		if (a.startsWith("-") && a !== "-") {
			if (WITH_VALUE.has(opt) && eq < 0)
				items.push({ opt, value: argv[i + 1], raw: [a, argv[++i]] });
			else
				items.push({ opt, value: eq > 0 ? a.slice(eq + 1) : null, raw: [a] });
		} else {
			items.push({ word: a, raw: [a] });
		}
	}
	return items;
}

function optionValue(argv, names) {
	let v = null;
	for (const it of splitArgv(argv))
		if (names.includes(it.opt))
			v = it.value;
	return v;
}

// Kubernetes' $(VAR) expansion in command and args: $(VAR) for a variable
// of the container's env, $$ for $, anything else as it is.
function expand(s, env) {
	return String(s).replace(/\$\$|\$\(([^)]*)\)/g, (m, name) =>
		m === "$$" ? "$" : name in env ? env[name] : m);
}

// The pod's file system, inside root: the container's mounts.
function mountPod(root, pod, container, ctx) {
	const mounts = [];
	const volumes = new Map((pod.volumes || []).map((v) => [v.name, v]));
	for (const m of container.volumeMounts || []) {
		const v = volumes.get(m.name);
		const dir = path.join(root, m.mountPath);
		fs.mkdirSync(dir, { recursive: true });
		if (v.configMap) {
			const cm = ctx.configMaps.get(v.configMap.name);
			const items = v.configMap.items ||
				Object.keys(cm.data).map((key) => ({ key, path: key }));
			for (const it of items) {
				const file = path.join(dir, it.path);
				fs.mkdirSync(path.dirname(file), { recursive: true });
				fs.writeFileSync(file, cm.data[it.key]);
				fs.chmodSync(file, it.mode ?? v.configMap.defaultMode ?? 0o644);
			}
		} else if (v.emptyDir) {
			fs.chmodSync(dir, 0o777); // an emptyDir's mode
		} else {
			fail(`volume ${m.name}: the test knows configMap and emptyDir volumes only`);
		}
		mounts.push(m.mountPath.replace(/\/+$/, ""));
	}
	return mounts;
}

// An absolute path of the pod -> the same path inside root; it must lie on
// a volume (the root file system is read-only and not part of the test).
function mapPath(root, mounts, p, what) {
	const hit = mounts.filter((m) => p === m || p.startsWith(`${m}/`)).sort((a, b) => b.length - a.length)[0];
	if (!hit)
		fail(`${what}: ${p} is on no volume of the pod (the root file system is read-only)`);
	return path.join(root, p);
}

// What ack-pod-identity-webhook adds to a pod when its namespace is labelled
// for injection and its service account names a RAM role: three variables
// and a projected token at a fixed path.
const RRSA_TOKEN = "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token";

function webhookEnv(root, pod, ctx) {
	const ns = [...ctx.namespaces.values()][0];
	const sa = ctx.serviceAccounts.get(pod.serviceAccountName);
	const role = sa && sa.metadata.annotations &&
		sa.metadata.annotations["pod-identity.alibabacloud.com/role-name"];
	if (!ns || ns.metadata.labels["pod-identity.alibabacloud.com/injection"] !== "on" || !role)
		return {};
	const token = path.join(root, RRSA_TOKEN);
	fs.mkdirSync(path.dirname(token), { recursive: true });
	fs.writeFileSync(token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl\n");
	fs.chmodSync(token, 0o644);
	return {
		ALIBABA_CLOUD_ROLE_ARN: `acs:ram::1234567890123456:role/${role}`,
		ALIBABA_CLOUD_OIDC_PROVIDER_ARN: "acs:ram::1234567890123456:oidc-provider/ack-rrsa-test",
		ALIBABA_CLOUD_OIDC_TOKEN_FILE: token,
	};
}

// The container's environment: env entries in order, as the kubelet
// resolves them ($(VAR) refers to earlier entries).
function containerEnv(root, mounts, container, index, ctx, what) {
	const env = {};
	for (const e of container.env || []) {
		let v;
		const vf = e.valueFrom;
		if (!vf)
			v = expand(e.value ?? "", env);
		else if (vf.secretKeyRef)
			v = secretValue(ctx.secrets.get(vf.secretKeyRef.name), vf.secretKeyRef.key);
		else if (vf.configMapKeyRef)
			v = ctx.configMaps.get(vf.configMapKeyRef.name).data[vf.configMapKeyRef.key];
		else if (vf.fieldRef && vf.fieldRef.fieldPath ===
			 "metadata.annotations['batch.kubernetes.io/job-completion-index']") {
			if (index === null)
				fail(`${what}: env ${e.name} wants a completion index, but the Job is not Indexed`);
			v = String(index);
		} else if (vf.fieldRef)
			v = "from-the-downward-api";
		else
			fail(`${what}: env ${e.name}: the test does not know this valueFrom`);
		if (v.startsWith("/"))
			v = mapPath(root, mounts, v, `${what}: env ${e.name}`);
		env[e.name] = v;
	}
	return env;
}

function run(bin, argv, env) {
	const r = spawnSync(bin, argv, { env, encoding: "utf8", timeout: 120000 });
	if (r.error)
		throw r.error;
	return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function show(r) {
	return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ""}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

// check-config's report: the accounts with their state, the scopes.
function parseCheckConfig(stdout) {
	const accounts = new Map(), scopes = [];
	let section = null;
	for (const line of stdout.split("\n")) {
		if (/^Accounts:/.test(line))
			section = "accounts";
		else if (/^Scopes a run would collect:/.test(line))
			section = "scopes";
		else if (!line.trim())
			section = null;
		else if (section === "accounts") {
			const m = /^\s+(\S+)\s+\S+\s+(ok|FAILED|at run time)\s/.exec(line);
			if (m)
				accounts.set(m[1], m[2]);
		} else if (section === "scopes") {
			const m = /^\s+(\S+\/\S+\/\S+\/\S+)\s/.exec(line);
			if (m)
				scopes.push(m[1]);
		}
	}
	return { accounts, scopes };
}

// Runs one container of one pod (one completion index) in its emulated
// pod: check-config (sync only) and the container's own command line. The
// results are checked by checkContainer(); the negative probes look at
// them too.
function podRuns(bin, doc, pod, container, index, ctx) {
	const what = `${docName(doc)}: container ${container.name}` +
		(index === null ? "" : `, completion index ${index}`);
	const root = fs.mkdtempSync(path.join(scratchDir(), "pod-"));
	const out = { what, root };
	try {
		const mounts = mountPod(root, pod, container, ctx);
		const injected = webhookEnv(root, pod, ctx);
		const own = containerEnv(root, mounts, container, index, ctx, what);
		const home = path.join(root, "home");
		fs.mkdirSync(home);
		// Nothing of the test machine's environment (PG*, cloud keys, ~) gets in.
		const base = { PATH: process.env.PATH, HOME: home, LC_ALL: "C" };
		for (const k of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"])
			if (process.env[k])
				base[k] = process.env[k];
		const argv = (container.args || []).map((a) => {
			const v = expand(a, { ...injected, ...own });
			return v.startsWith("/") ? mapPath(root, mounts, v, `${what}: args`) : v;
		});
		const items = splitArgv(argv);
		const cmdIndex = items.findIndex((it) => it.word !== undefined);
		out.command = cmdIndex >= 0 ? items[cmdIndex].word : null;
		if (!COMMANDS.has(out.command))
			fail(`${what}: args name no aifleet command: ${JSON.stringify(container.args)}`);
		out.json = optionValue(argv, ["--log-format"]) === "json";
		const podEnv = { ...base, ...injected, ...own };

		if (out.command === "sync") {
			// 1. check-config with the container's own options, less those
			// of sync alone. It parses them with the parser sync uses, loads
			// the configuration from the ConfigMap's path with the
			// ConfigMap's mode (a file group or others can write is
			// refused), checks every account's credential source against
			// the pod's environment (the Secret's keys, the webhook's OIDC
			// variables and token file) without calling a server, and lists
			// the scopes --shard/--only/--account select. Exit 0 only if all
			// of that holds and the selection is not empty; 64 is a usage
			// error, 78 a configuration, credential or empty selection.
			out.ccArgv = items.flatMap((it, i) => i === cmdIndex ? ["check-config"]
				: SYNC_ONLY.has(it.opt) ? [] : it.raw);
			out.ccRun = run(bin, out.ccArgv, podEnv);
			out.cc = parseCheckConfig(out.ccRun.stdout);
			// the reference: the whole configuration, no selection, same pod
			const cfgPath = optionValue(argv, ["-c", "--config"]) || own.AIFLEET_CONFIG;
			out.allRun = run(bin, ["--config", cfgPath, "check-config"], podEnv);
			out.all = parseCheckConfig(out.allRun.stdout);
		}

		// 2. The container's args exactly, plus --db naming a socket
		// directory with no server in it (getopt takes options after the
		// command; --db overrides [database] conninfo), and without the
		// webhook's OIDC variables: a credential source that asks a server
		// would call STS on the network; without them the OIDC account
		// fails at once, locally. HTTP(S) proxies point at a loopback port
		// in case anything else tried. What the exit code proves:
		//   75 (database unreachable) comes only from the connection
		//      attempt, which follows the parsing of every option (64
		//      otherwise), the configuration (78), the metrics path check
		//      (78) and, for sync, the credentials (the run stops before the
		//      database when no account of its selection has any): the
		//      whole command line was accepted.
		//   78 is expected for sync instead when every scope of the
		//      selection belongs to an account whose credentials only the
		//      webhook gives; the log must then say so (the OIDC
		//      variables), not name a configuration or usage problem.
		const db = `host=${path.join(root, "no-postgres")} dbname=aifleet connect_timeout=5`;
		out.fullArgv = [...argv, "--db", db];
		const proxy = "http://127.0.0.1:9";
		out.fullRun = run(bin, out.fullArgv, { ...base, ...own, http_proxy: proxy,
							  https_proxy: proxy, HTTPS_PROXY: proxy,
							  ALL_PROXY: proxy });
		out.metrics = optionValue(out.fullArgv, ["--metrics-file"]);
		out.metricsText = out.metrics && fs.existsSync(out.metrics)
			? fs.readFileSync(out.metrics, "utf8") : "";
	} finally {
		fs.rmSync(root, { recursive: true, force: true });
	}
	return out;
}

function hide(root, argv) {
	return argv.map((a) => a.split(root).join("")).join(" ");
}

// The checks of one container's runs; returns the scopes check-config
// listed (sync), or null.
function checkContainer(o) {
	if (o.command === "sync") {
		const r = o.ccRun;
		check(`${o.what}: aifleet ${hide(o.root, o.ccArgv)} exits 0`,
		      () => r.code === 0 && o.cc.scopes.length
			      ? (/FAILED/.test(r.stdout) ? [`an account FAILED\n${show(r)}`] : [])
			      : [show(r)]);
		if (o.allRun.code !== 0)
			fail(`${o.what}: check-config of the whole configuration: ${show(o.allRun)}`);
	}
	let expect = 75;
	if (o.command === "sync")
		expect = o.cc.scopes.some((s) => o.all.accounts.get(s.split("/")[1]) === "ok") ? 75 : 78;
	const r = o.fullRun;
	check(`${o.what}: aifleet ${hide(o.root, o.fullArgv)} (no database) exits ${expect}`, () => {
		const p = [];
		if (r.code !== expect)
			p.push(`expected exit ${expect}\n${show(r)}`);
		if (o.json)
			for (const l of r.stderr.split("\n").filter((x) => x.trim())) {
				try {
					JSON.parse(l);
				} catch (e) {
					p.push(`--log-format json, but a log line is not JSON: ${l}`);
				}
			}
		if (expect === 75 && !/cannot connect to PostgreSQL/.test(r.stderr))
			p.push(`the log does not say the database was unreachable\n${show(r)}`);
		if (expect === 78 && !/OIDC: ALIBABA_CLOUD_ROLE_ARN/.test(r.stderr))
			p.push(`78, but not for the webhook's variables\n${show(r)}`);
		if (o.metrics && o.command === "sync" &&
		    !new RegExp(`^aifleet_run_exit_code ${r.code}$`, "m").test(o.metricsText))
			p.push(`--metrics-file ${o.metrics} does not record the run's exit code`);
		return p;
	});
	return o.command === "sync" ? o.cc.scopes : null;
}

// Broken pods whose command line or configuration the runs above must
// refuse, so that they cannot pass whatever the manifests say: [what, the
// run, its expected exit code, how to break the pod].
const BROKEN_PODS = [
	// not a prefix of a real option: getopt_long takes abbreviations
	["a misspelled option (--no-progess)", "ccRun", 64, (c) => {
		c.args = ["--no-progess", ...c.args];
	}],
	["a value aifleet does not know (--log-format jsn)", "ccRun", 64, (c) => {
		c.args = c.args.map((a) => a === "json" ? "jsn" : a);
	}],
	["a shard index out of range (--shard N/N)", "ccRun", 64, (c) => {
		c.args = c.args.map((a) => a.replace(/^\$\(JOB_COMPLETION_INDEX\)\/(\d+)$/, "$1/$1"));
	}],
	["a group-writable configuration (defaultMode 0664)", "ccRun", 78, (c, pod) => {
		pod.volumes.find((v) => v.configMap).configMap.defaultMode = 0o664;
	}],
	// only the shard that holds a Tencent scope reads it (check-config
	// checks the accounts of its own selection): some index must refuse
	["an env without a variable the configuration reads (TENCENTCLOUD_SECRET_ID)", "ccRun", 78, (c) => {
		c.env = c.env.filter((e) => e.name !== "TENCENTCLOUD_SECRET_ID");
	}, "some index"],
	["no OIDC identity (the service account without its RAM role)", "ccRun", 78, (c, pod, ctx) => {
		const sa = clone(ctx.serviceAccounts.get(pod.serviceAccountName));
		delete sa.metadata.annotations["pod-identity.alibabacloud.com/role-name"];
		ctx.serviceAccounts.set(pod.serviceAccountName, sa);
	}],
	["a misspelled key in the configuration (regoins)", "ccRun", 78, (c, pod, ctx) => {
		const name = pod.volumes.find((v) => v.configMap).configMap.name;
		const cm = clone(ctx.configMaps.get(name));
		cm.data["aifleet.ini"] = cm.data["aifleet.ini"].replace(/^regions =/m, "regoins =");
		ctx.configMaps.set(name, cm);
	}],
	["the configuration at another path than the mount", "fullRun", 78, (c) => {
		c.args = c.args.map((a) => a === "/etc/aifleet/aifleet.ini" ? "/etc/aifleet/aifleet.conf" : a);
	}],
];

function commandsMode(opts) {
	const req = createRequire(path.join(path.resolve(opts["node-dir"]), "package.json"));
	const YAML = req("yaml");
	const bin = path.resolve(opts.aifleet);
	const docs = loadManifests(YAML, opts.manifests);
	const ctx = contextOf(docs);
	const version = run(bin, ["version"], { PATH: process.env.PATH });
	console.log(`# ${version.stdout.trim()}`);
	let workloads = 0;
	for (const doc of docs) {
		const job = workload(doc.obj);
		if (!job)
			continue;
		workloads++;
		const pod = job.template.spec;
		const indexed = job.completionMode === "Indexed";
		const indexes = indexed ? [...Array(job.completions).keys()] : [null];
		for (const container of pod.containers) {
			const selected = [];
			let all = null;
			for (const index of indexes) {
				const o = podRuns(bin, doc, pod, container, index, ctx);
				const s = checkContainer(o);
				if (s) {
					selected.push(...s);
					all = o.all.scopes;
				}
			}
			if (!all)
				continue;
			const shard = optionValue(container.args || [], ["--shard"]);
			if (indexed)
				check(`${docName(doc)}: --shard ${shard} matches completions ` +
				      `${job.completions} and parallelism ${job.parallelism}`, () => {
					const m = /^\$\(JOB_COMPLETION_INDEX\)\/(\d+)$/.exec(shard || "");
					return m && Number(m[1]) === job.completions &&
						job.parallelism === job.completions
						? [] : [`--shard must be $(JOB_COMPLETION_INDEX)/${job.completions}`];
				});
			check(`${docName(doc)}: its pods together take every scope of the configuration ` +
			      `exactly once (${all.length} scopes)`, () => {
				const want = [...all].sort(), got = [...selected].sort();
				return JSON.stringify(want) === JSON.stringify(got)
					? [] : [`configuration: ${want.join(" ")}\npods:          ${got.join(" ")}`];
			});
		}
	}
	if (!workloads)
		notOk("the manifests hold CronJobs and Jobs", "none found");

	// the negative probes, on a copy of the sharded CronJob's pod (index 0)
	const target = docs.find((d) => workload(d.obj) && workload(d.obj).completionMode === "Indexed");
	if (!target) {
		notOk("negative: an Indexed Job to break", "none found");
		return;
	}
	for (const [what, which, expect, edit, indexes] of BROKEN_PODS) {
		const obj = clone(target.obj);
		const pod = workload(obj).template.spec;
		const c = pod.containers[0];
		const bctx = { ...ctx, serviceAccounts: new Map(ctx.serviceAccounts),
			       configMaps: new Map(ctx.configMaps) };
		edit(c, pod, bctx);
		const tries = indexes === "some index" ? workload(obj).completions : 1;
		let o, r;
		for (let k = 0; k < tries && (!r || r.code !== expect); k++) {
			o = podRuns(bin, { ...target, file: `${target.file} (broken)`, obj }, pod, c, k, bctx);
			r = o[which];
		}
		check(`negative: ${what}: ${which === "ccRun" ? "check-config" : "the command line"} ` +
		      `exits ${expect}`, () => {
			if (!r || r.code !== expect)
				return [r ? show(r) : "not run"];
			const lines = `${r.stdout}${r.stderr}`.split("\n");
			const why = lines.find((l) => /FAILED/.test(l)) ||
				lines.find((l) => /error|unrecognized|unknown|wants|writable/.test(l));
			return { notes: [`refused: ${(why || "").split(o.root).join("").trim()}`] };
		});
	}
}

// ---- main ------------------------------------------------------------------

const { mode, opts } = parseArgs(process.argv.slice(2));
try {
	if (mode === "schema")
		schemaMode(opts);
	else
		commandsMode(opts);
} catch (e) {
	notOk(`${mode}: the test itself`, e instanceof CheckError ? e.message : e.stack);
} finally {
	cleanup();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
