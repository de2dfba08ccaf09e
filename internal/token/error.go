package token

// Error codes carried by *Error. They are stable identifiers: callers map
// them to HTTP statuses and client-visible error codes in one table. All
// but CodeKeysUnavailable mean the token is not acceptable (401);
// CodeKeysUnavailable means the service cannot tell (503).
const (
	// CodeMalformed means the string is not a compact JWS whose header and
	// payload are base64url-encoded JSON objects, or it uses a JOSE feature
	// this package does not accept (crit, b64).
	CodeMalformed = "token_malformed"
	// CodeExpired means exp, plus the configured skew, is not after the current time.
	CodeExpired = "token_expired"
	// CodeNotYetValid means nbf or iat, minus the configured skew, is after the
	// current time.
	CodeNotYetValid = "token_not_yet_valid"
	// CodeBadSignature means the signature does not verify with the key named by
	// the token.
	CodeBadSignature = "token_bad_signature"
	// CodeUnknownKey means no usable key in the key set matches the token's kid,
	// even after a refresh, or the token has no kid and the set holds more
	// than one key.
	CodeUnknownKey = "token_unknown_key"
	// CodeAlgorithm means the header alg is not in the allow-list (none and HS*
	// never are), or it does not match the key's type or the key's own alg.
	CodeAlgorithm = "token_algorithm_not_allowed"
	// CodeIssuer means iss is missing or differs from Config.Issuer.
	CodeIssuer = "token_wrong_issuer"
	// CodeAudience means Config.Audience is set and aud does not contain it.
	CodeAudience = "token_wrong_audience"
	// CodeClaims means a claim has the wrong JSON type or value, or exp is missing.
	CodeClaims = "token_invalid_claims"
	// CodeKeysUnavailable means the key set could not be fetched when it was
	// needed. Unlike the other codes it says nothing about the token; a retry
	// may succeed.
	CodeKeysUnavailable = "token_keys_unavailable"
)

// Error is the only error type Verify returns. Use errors.As to get it.
//
// Code is one of the Code constants. Message is a short lower-case
// explanation that is safe to show to the client that sent the token: it
// never holds key material or configuration. Error() additionally includes
// the underlying cause, if there is one (for example why the key set could
// not be fetched), and is meant for logs; Unwrap returns that cause.
type Error struct {
	Code    string
	Message string

	cause error
}

// Error returns "code: message", followed by ": cause" when there is a cause.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the underlying cause, or nil.
func (e *Error) Unwrap() error { return e.cause }

func newError(code, msg string) *Error { return &Error{Code: code, Message: msg} }
