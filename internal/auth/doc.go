// Package auth decides who a client is: it takes the credential of a
// request (Authorization: Bearer, the browser idiom Sec-WebSocket-Protocol:
// bearer, <token>, or ?token=) and verifies it as the static token or as a
// JWT signed by a configured key (HMAC secret, PEM public key, or a JWKS
// fetched directly or discovered from an OpenID Connect issuer and kept
// fresh by Authenticator.Run). The result is an Identity: the tenant the
// token restricts its holder to, and when the token expires. Package limits
// decides how many connections are accepted; this one only who is asking.
//
// Everything here is safe for concurrent use.
package auth
