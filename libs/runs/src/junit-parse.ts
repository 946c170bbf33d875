import { XMLParser } from 'fast-xml-parser';
import { CASE_LIMITS, cut, type TestCase } from '@fleet/contracts';

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  // Node's testcase has a `failure` attribute beside its `failure` element: attributes get a prefix of their own.
  attributeNamePrefix: '@_',
  isArray: (name) => ['testsuite', 'testcase', 'failure', 'error', 'skipped', 'flakyFailure', 'rerunFailure'].includes(name),
  // A report is data: no entity expansion, no surprises.
  processEntities: true,
  htmlEntities: false,
});

const text = (v: unknown): string => (typeof v === 'string' ? v : v && typeof v === 'object' && '#text' in v ? String((v as Node)['#text']) : '');
const attr = (n: Node | undefined, name: string): string | undefined =>
  n && typeof n[`@_${name}`] === 'string' ? (n[`@_${name}`] as string) : undefined;

/**
 * The test cases of a JUnit XML report (node's `--test-reporter=junit`, pytest's `--junitxml`, Surefire, …):
 * every `testcase` at any depth, its nested suites folded into its name, with its status, message and output,
 * bounded by CASE_LIMITS. Throws on a document that is not XML.
 */
export function parseJUnit(xml: string): TestCase[] {
  const doc = parser.parse(xml) as Node;
  const out: TestCase[] = [];
  const visit = (node: Node, suites: string[]) => {
    for (const tc of (node.testcase as Node[] | undefined) ?? []) {
      if (out.length >= CASE_LIMITS.cases) return;
      const classname = attr(tc, 'classname') ?? '';
      const name = [...suites, attr(tc, 'name') ?? '(unnamed)'].join(' › ');
      const failure = (tc.failure as Node[] | undefined)?.[0];
      const error = (tc.error as Node[] | undefined)?.[0];
      const skipped = (tc.skipped as Node[] | undefined)?.[0];
      const bad = failure ?? error;
      const status: TestCase['status'] = failure ? 'failed' : error ? 'error' : skipped !== undefined ? 'skipped' : 'passed';
      const message = attr(bad, 'message') ?? attr(typeof skipped === 'object' ? skipped : undefined, 'message');
      const body = bad ? text(bad) : text(tc['system-out']);
      out.push({
        name,
        classname,
        time_s: Number(attr(tc, 'time') ?? 0) || 0,
        status,
        ...(message && { message: cut(message, CASE_LIMITS.messageChars) }),
        ...(body.trim() && { output: cut(body.trim(), CASE_LIMITS.outputChars) }),
      });
    }
    for (const suite of (node.testsuite as Node[] | undefined) ?? []) {
      const suiteName = attr(suite, 'name');
      visit(suite, node === root && fileLevel ? suites : suiteName ? [...suites, suiteName] : suites);
    }
  };
  const root = (doc.testsuites as Node | undefined) ?? doc;
  // One suite at the top and no case beside it is the runner's suite for the file (pytest, Surefire): it
  // names nothing. Suites beside top-level cases (node's describe blocks) are part of the cases' names.
  const fileLevel = ((root.testsuite as Node[] | undefined)?.length ?? 0) === 1 && !root.testcase;
  visit(root, []);
  return out;
}
