/**
 * Text that is Unicode: no half of a surrogate pair, which JSON's escapes (`"\ud800"`) can make. Redis's JSON
 * decoder (the analyzer's commit script) and URI encoding refuse such a string downstream, so the edges refuse it.
 */
export const isUnicodeText = (s: string): boolean => !/[\uD800-\uDFFF]/u.test(s);
