/** One test case as a runner's JUnit XML reported it (or a whole file, for a runner without JUnit). */
export interface TestCase {
  /** Stable within the file: nested suite names and the case's name, joined by ' › '. */
  name: string;
  classname: string;
  time_s: number;
  status: 'passed' | 'failed' | 'error' | 'skipped';
  message?: string;
  /** The failure's text or the case's output, cut to its end. */
  output?: string;
}

/** How much of a runner's report is kept per attempt, whatever it wrote. */
export const CASE_LIMITS = { cases: 2000, messageChars: 512, outputChars: 2048 } as const;

export const cut = (text: string, max: number): string => (text.length <= max ? text : `…${text.slice(text.length - max)}`);
