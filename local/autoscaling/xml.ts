/**
 * The XML of the AWS Query protocol as Auto Scaling answers: `<{Action}Response>` holding
 * `<{Action}Result>` and `<ResponseMetadata><RequestId/>`, lists as `<Name><member>…</member></Name>`,
 * errors as `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
 * Functions return already-escaped fragments.
 */
import { escapeXml } from '../ec2-simulator/xml';

export const AUTOSCALING_XMLNS = 'http://autoscaling.amazonaws.com/doc/2011-01-01/';

/** `<Name>value</Name>`, or nothing when the value is absent. */
export function el(name: string, value: string | number | boolean | undefined | null): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export function wrap(name: string, ...children: string[]): string {
  return `<${name}>${children.join('')}</${name}>`;
}

/** `<Name><member>…</member>…</Name>` (an empty list is `<Name/>`). */
export function members<T>(name: string, items: readonly T[], render: (item: T) => string): string {
  if (items.length === 0) return `<${name}/>`;
  return wrap(name, ...items.map((item) => wrap('member', render(item))));
}

export function queryResponse(action: string, requestId: string, result: string | undefined): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${action}Response xmlns="${AUTOSCALING_XMLNS}">` +
    (result === undefined ? '' : wrap(`${action}Result`, result)) +
    wrap('ResponseMetadata', el('RequestId', requestId)) +
    `</${action}Response>`
  );
}

export function queryError(type: string, code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<ErrorResponse xmlns="${AUTOSCALING_XMLNS}">` +
    wrap('Error', el('Type', type), el('Code', code), el('Message', message)) +
    el('RequestId', requestId) +
    '</ErrorResponse>'
  );
}
