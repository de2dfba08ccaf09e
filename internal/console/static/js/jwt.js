// Decoding a pasted session token for display. Decoding is not
// verification: whether the token is accepted is the server's answer.

function b64url(s) {
  const pad = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(pad);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** {header, claims} of a compact JWS, or {error} saying why it cannot be read. */
export function decodeJWT(token) {
  const parts = token.trim().split('.');
  if (parts.length !== 3) return { error: 'not a JWT: expected three dot-separated parts, found ' + parts.length };
  try {
    return { header: JSON.parse(b64url(parts[0])), claims: JSON.parse(b64url(parts[1])) };
  } catch (err) {
    return { error: 'not a JWT: ' + err.message };
  }
}
