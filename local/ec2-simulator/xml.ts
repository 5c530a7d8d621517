/**
 * The small part of XML the EC2 Query API answers with: `<{Action}Response xmlns=...>` with a
 * `requestId`, lower-camel-case elements, lists as `<xxxSet><item>…</item></xxxSet>`, and
 * errors as `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
 * Functions return already-escaped fragments.
 */

export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `<name>value</name>`, or nothing when the value is absent. */
export function leaf(name: string, value: string | number | boolean | undefined | null): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/** `<name>…children…</name>`. */
export function node(name: string, ...children: string[]): string {
  const inner = children.join('');
  return inner === '' ? `<${name}/>` : `<${name}>${inner}</${name}>`;
}

/** `<name><item>…</item>…</name>`. */
export function itemSet<T>(name: string, items: readonly T[], render: (item: T) => string): string {
  return node(name, ...items.map((item) => node('item', render(item))));
}

/** A tag set, or nothing when there are no tags (AWS omits an empty `tagSet`). */
export function tagSet(tags: Record<string, string>): string {
  const entries = Object.entries(tags);
  if (entries.length === 0) return '';
  return itemSet('tagSet', entries, ([key, value]) => leaf('key', key) + leaf('value', value));
}

export function responseDocument(action: string, requestId: string, body: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${action}Response xmlns="${EC2_XMLNS}">${leaf('requestId', requestId)}${body}</${action}Response>`
  );
}

export function errorDocument(code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    node(
      'Response',
      node('Errors', node('Error', leaf('Code', code), leaf('Message', message))),
      leaf('RequestID', requestId),
    )
  );
}
