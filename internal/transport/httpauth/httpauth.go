// Package httpauth holds the HTTP plumbing every HTTP listener shares (MI
// JSON-RPC on /mi and XML-RPC on /RPC2, the web console): the browser
// threat model ([Guard]: Host, Origin and Sec-Fetch-Site checks), POST-only
// RPC bodies of their own media type with optional token authentication
// and a bounded size, the request context, and the server lifecycle the
// HTTP transports share over the session kit ([Server]: New, Listen, Run,
// Close, with contained panics).
//
// Allowed imports: the standard library and internal/transport/conn; any
// transport may import it.
package httpauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Authorized reports whether r carries token, as "Authorization: Bearer
// TOKEN" or as the password of HTTP Basic auth (any user name, so that
// clients that only speak http://user:TOKEN@host/ work). An empty token
// authorizes every request. The comparison takes constant time.
func Authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got := ""
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimSpace(a[len("Bearer "):])
	} else if _, p, ok := r.BasicAuth(); ok {
		got = p
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// ReadPOST admits a POST request carrying token with the media type
// mediaType and reads its body, at most max bytes. When it returns ok false
// it has already answered: 405 for another method, 415 for another
// Content-Type, 401 (with a Basic challenge for realm) without the token,
// 413 for a body over max, 400 for a broken body.
//
// Requiring the RPC's own media type is the CSRF defence of an API that
// has no session: a web page can make a browser POST text/plain or a form
// to any address without asking, but not application/json or text/xml
// (those need a CORS preflight, which this server never grants).
func ReadPOST(w http.ResponseWriter, r *http.Request, mediaType, token, realm string, max int64) (body []byte, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaType {
		http.Error(w, "415 Unsupported Media Type: want Content-Type "+mediaType, http.StatusUnsupportedMediaType)
		return nil, false
	}
	if !Authorized(r, token) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "400 Bad Request", http.StatusBadRequest)
		}
		return nil, false
	}
	return body, true
}

// RequestContext is the context a complete request runs its command in.
// net/http cancels r.Context() as soon as the client shuts its sending
// side, which scripts do right after the request (`printf … | nc -N`); a
// request that has been read in full is still answered, so the context
// keeps r's values but not its cancellation. Commands have deadlines of
// their own.
func RequestContext(r *http.Request) context.Context {
	return context.WithoutCancel(r.Context())
}
