/** Escaping for the report: text into HTML, and JSON into an inline <script>. */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text → HTML text or attribute value (double- or single-quoted). */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON that is safe inside an inline <script> element: `<`, `>` and `&` become \u003c, \u003e,
 * \u0026 (so no `</script>` or `<!--` can end or change the element), and U+2028/U+2029 are
 * escaped too. The result is still valid JSON and a valid JavaScript expression.
 */
export function jsonForScript(value: unknown): string {
  const s = JSON.stringify(value);
  if (s === undefined) return 'null';
  return s.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
