/**
 * Text that is Unicode: no half of a surrogate pair, which JSON's escapes (`"\ud800"`) can make. URI encoding (the
 * analyzer's sample rows) throws on such a string, and UTF-8 (what Redis is sent) cannot carry it, so the edges refuse it.
 */
export const isUnicodeText = (s: string): boolean => !/[\uD800-\uDFFF]/u.test(s);
