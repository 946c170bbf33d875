import { XMLBuilder } from 'fast-xml-parser';
import type { FileResult } from './run-outcome.js';

export interface JUnitRun {
  id: string;
  name: string;
  created_at: number;
  labels: Record<string, string>;
  /** The repository and commit the run tested: `source_repo`, `source_commit` (and `source_ref`) properties. */
  source?: { repo: string; commit: string; ref?: string };
  files: readonly FileResult[];
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '#text', format: true, suppressEmptyNode: true });

/** Terminal colour and cursor sequences (CSI … letter), which test runners print and XML has no use for. */
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;
/** What XML 1.0 forbids in a document: C0 controls other than tab, newline and return; U+FFFE/FFFF; lone surrogates. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Text a CI server's XML parser accepts: colour codes dropped, every other forbidden character replaced by U+FFFD. */
export const xmlSafe = (text: string): string => text.replace(ANSI, '').replace(FORBIDDEN, '\ufffd');

const secs = (ms: number | null | undefined) => ((ms ?? 0) / 1000).toFixed(3);

/**
 * One JUnit XML document for a run, in the shape Jenkins (junit-4.xsd) and GitLab read: `testsuites`, one
 * `testsuite` per file, a `testcase` per case (classname the file, name unique within it) with `failure`,
 * `error` or `skipped`; a case that failed and then passed on a retry keeps its earlier failures as Surefire's
 * `flakyFailure`. A quarantined case that failed is reported `skipped` (with the failure in its message and
 * output), so the CI server does not fail on it either. A file that did not run is a skipped case saying why.
 */
export function buildJUnit(run: JUnitRun): string {
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  let time = 0;
  const suites = run.files.map((f) => {
    const seen = new Map<string, number>();
    const unique = (name: string) => {
      const n = (seen.get(name) ?? 0) + 1;
      seen.set(name, n);
      return n === 1 ? name : `${name} (${n})`;
    };
    const cases =
      f.cases.length > 0
        ? f.cases.map((c) => {
            const tc: Record<string, unknown> = { '@classname': f.key, '@name': unique(c.name), '@time': c.time_s.toFixed(3), '@file': f.key };
            const detail = { '@message': c.message ?? '', '#text': c.output ?? '' };
            if ((c.status === 'failed' || c.status === 'error') && c.quarantined) {
              tc.skipped = { '@message': `quarantined; ${c.status}: ${c.message ?? ''}`.trim() };
              tc['system-out'] = c.output ?? '';
            } else if (c.status === 'failed') tc.failure = { ...detail, '@type': f.reason ?? 'failure' };
            else if (c.status === 'error') tc.error = { ...detail, '@type': f.reason ?? 'error' };
            else if (c.status === 'skipped') tc.skipped = { '@message': c.message ?? 'skipped' };
            if (c.flaky) {
              tc.flakyFailure = c.earlier_failures.map((e) => ({
                '@message': e.message ?? `attempt ${e.attempt} failed`,
                '@type': 'flaky',
                stackTrace: e.output ?? '',
              }));
            }
            return tc;
          })
        : [
            {
              '@classname': f.key,
              '@name': f.key,
              '@time': '0.000',
              '@file': f.key,
              skipped: { '@message': f.state === 'cancelled' ? `not run: ${f.reason ?? 'cancelled'}` : `not run: ${f.state}` },
            },
          ];
    const count = (k: string) => cases.filter((c) => k in c).length;
    const suite = {
      '@name': f.key,
      '@tests': cases.length,
      '@failures': count('failure'),
      '@errors': count('error'),
      '@skipped': count('skipped'),
      '@time': secs(f.duration_ms),
      '@timestamp': new Date(run.created_at).toISOString(),
      testcase: cases,
    };
    tests += cases.length;
    failures += suite['@failures'];
    errors += suite['@errors'];
    skipped += suite['@skipped'];
    time += f.duration_ms ?? 0;
    return suite;
  });
  const doc = {
    '?xml': { '@version': '1.0', '@encoding': 'UTF-8' },
    testsuites: {
      '@name': run.name,
      '@tests': tests,
      '@failures': failures,
      '@errors': errors,
      '@skipped': skipped,
      '@time': secs(time),
      '@timestamp': new Date(run.created_at).toISOString(),
      properties: {
        property: [
          { '@name': 'run_id', '@value': run.id },
          ...(run.source
            ? [
                { '@name': 'source_repo', '@value': run.source.repo },
                { '@name': 'source_commit', '@value': run.source.commit },
                ...(run.source.ref ? [{ '@name': 'source_ref', '@value': run.source.ref }] : []),
              ]
            : []),
          ...Object.entries(run.labels).map(([k, v]) => ({ '@name': k, '@value': v })),
        ],
      },
      testsuite: suites,
    },
  };
  // Test output and messages are copied in as they were printed; the builder escapes markup, not these.
  return xmlSafe(builder.build(doc));
}
