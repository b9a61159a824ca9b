// The optional bearer token: compared in constant time, so the comparison leaks neither the token
// nor how much of it a guess got right.
import { createHash, timingSafeEqual } from 'node:crypto';

/** A check of `Authorization: Bearer <token>` headers; undefined token: every request passes. */
export function bearerCheck(token: string | undefined): (header: string | undefined) => boolean {
  if (token === undefined) return () => true;
  if (token.length === 0) throw new RangeError('Expected a non-empty token for token but received an empty one');
  // Digests of both sides have one length whatever was sent, so timingSafeEqual never sees a length mismatch.
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    const match = /^Bearer (.+)$/.exec(header ?? '');
    const given = createHash('sha256')
      .update(match?.[1] ?? '')
      .digest();
    return timingSafeEqual(given, expected) && match !== null;
  };
}
