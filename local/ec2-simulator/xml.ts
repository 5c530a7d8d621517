/**
 * The small part of XML the EC2 Query API answers with: `<{Action}Response xmlns=...>` with a
 * `requestId`, lower-camel-case elements, lists as `<xxxSet><item>…</item></xxxSet>`, and
 * errors as `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
 * The Auto Scaling simulator speaks it too (DescribeInstances), so it lives in ../aws-query/xml.ts.
 */
export {
  EC2_XMLNS,
  ec2ErrorDocument as errorDocument,
  ec2ResponseDocument as responseDocument,
  escapeXml,
  itemSet,
  leaf,
  node,
  tagSet,
} from '../aws-query/xml';
