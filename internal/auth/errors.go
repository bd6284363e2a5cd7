package auth

import "errors"

// ErrUnauthorized means Authenticator.Authenticate found no credentials, or
// credentials that do not verify (wrong token, bad signature, expired,
// refused algorithm, missing tenant claim…). The wrapping error says which;
// it never contains the credential. Branch on it with errors.Is.
var ErrUnauthorized = errors.New("auth: unauthorized")
