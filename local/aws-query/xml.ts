/**
 * The XML of AWS Query-protocol answers. Functions return already-escaped fragments.
 *
 * EC2's dialect (which the Auto Scaling simulator also speaks for DescribeInstances):
 * `<{Action}Response xmlns=...>` with a `requestId`, lower-camel-case elements, lists as
 * `<xxxSet><item>…</item></xxxSet>`, and errors as
 * `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
 */

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `<name>value</name>`, or nothing when the value is absent. */
export function leaf(name: string, value: string | number | boolean | undefined | null): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/** `<name>…children…</name>` (`<name/>` without children). */
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

export function ec2ResponseDocument(action: string, requestId: string, body: string): string {
  return (
    XML_DECLARATION +
    `<${action}Response xmlns="${EC2_XMLNS}">${leaf('requestId', requestId)}${body}</${action}Response>`
  );
}

export function ec2ErrorDocument(code: string, message: string, requestId: string): string {
  return (
    XML_DECLARATION +
    node(
      'Response',
      node('Errors', node('Error', leaf('Code', code), leaf('Message', message))),
      leaf('RequestID', requestId),
    )
  );
}
