/**
 * The XML of the AWS Query protocol as Auto Scaling answers: `<{Action}Response>` holding
 * `<{Action}Result>` and `<ResponseMetadata><RequestId/>`, lists as `<Name><member>…</member></Name>`,
 * errors as `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
 * Functions return already-escaped fragments.
 */
import { leaf, XML_DECLARATION } from '../aws-query/xml';

export const AUTOSCALING_XMLNS = 'http://autoscaling.amazonaws.com/doc/2011-01-01/';

/** `<Name>value</Name>`, or nothing when the value is absent. */
export const el = leaf;

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
    XML_DECLARATION +
    `<${action}Response xmlns="${AUTOSCALING_XMLNS}">` +
    (result === undefined ? '' : wrap(`${action}Result`, result)) +
    wrap('ResponseMetadata', el('RequestId', requestId)) +
    `</${action}Response>`
  );
}

export function queryError(type: string, code: string, message: string, requestId: string): string {
  return (
    XML_DECLARATION +
    `<ErrorResponse xmlns="${AUTOSCALING_XMLNS}">` +
    wrap('Error', el('Type', type), el('Code', code), el('Message', message)) +
    el('RequestId', requestId) +
    '</ErrorResponse>'
  );
}
