package component

import (
	"net/url"
	"regexp"
	"strings"
)

var (
	secretQueryKey = regexp.MustCompile(`(?i)^(?:` + secretQueryKeys + `)$`)
	// secretQuery is a secret query parameter anywhere in a text.
	secretQuery = regexp.MustCompile(`(?i)([?&;](?:` + secretQueryKeys + `)=)([^&#\s"']+)`)
	// tokenLike is a URL path segment that reads as a key (an exchange's
	// listen key or API token in the path): long, of key characters.
	tokenLike = regexp.MustCompile(`^[A-Za-z0-9_\-.~]{20,}$`)
)

// secretQueryKeys are the query parameter names whose values are masked.
const secretQueryKeys = `signature|sig|listenkey|listen_key|key|secret|token|access_token|password|passwd|api[_-]?key|apikey|access[_-]?key|auth`

// URLSecrets returns the parts of a URL that are secrets: the password of
// its user info (or, for nats:// and tls://, a user info without a
// password, which NATS takes as a token), the values of query parameters such as signature,
// listenKey, key, secret, token and password, and path segments that read
// as keys (20 or more key characters, letters and digits both). A masked
// URL keeps its shape, so a log still says which endpoint it was.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p)
	}
	// Shorter tokens are masked where they stand in the URL (MaskURL), as
	// short query values are.
	if tok := userToken(u); len(tok) >= 8 {
		out = append(out, tok)
	}
	for k, vs := range u.Query() {
		if secretQueryKey.MatchString(k) {
			for _, v := range vs {
				// Shorter values would mask unrelated text wherever they
				// occur; in URL form they are masked by key (MaskURL,
				// and the redactor's query pattern).
				if len(v) >= 8 {
					out = append(out, v, url.QueryEscape(v))
				}
			}
		}
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if keyLike(seg) {
			out = append(out, seg)
		}
	}
	return out
}

// MaskURL is raw with its secrets replaced by mask: the user info's
// password (or a NATS token, as in URLSecrets), the values of secret query parameters (secretQueryKeys) and
// key-like path segments; "(unparseable url)" if raw is not a URL.
func MaskURL(raw, mask string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), mask)
	} else if userToken(u) != "" {
		u.User = url.User(mask)
	}
	segs := strings.Split(u.EscapedPath(), "/")
	for i, seg := range segs {
		if keyLike(seg) {
			segs[i] = mask
		}
	}
	u.RawPath = ""
	u.Path, _ = url.PathUnescape(strings.Join(segs, "/"))
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, _, ok := strings.Cut(p, "="); ok && secretQueryKey.MatchString(k) {
				parts[i] = k + "=" + mask
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

// tokenSchemes are the URL schemes whose user info without a password is
// an authentication token: NATS's (nats://token@host, also over tls://),
// which the client sends as the connection's auth token.
var tokenSchemes = map[string]bool{"nats": true, "tls": true}

// userToken is u's user info when it is a token (tokenSchemes, a user
// and no password), else "".
func userToken(u *url.URL) string {
	if u.User == nil || !tokenSchemes[strings.ToLower(u.Scheme)] {
		return ""
	}
	if _, ok := u.User.Password(); ok {
		return ""
	}
	return u.User.Username()
}

// keyLike reports a path segment that reads as a key: tokenLike, with
// letters and digits both.
func keyLike(seg string) bool {
	return tokenLike.MatchString(seg) && strings.ContainsAny(seg, "0123456789") &&
		strings.IndexFunc(seg, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }) >= 0
}

// MaskQuerySecrets replaces the values of secret query parameters
// (?signature=…, &token=…) anywhere in text with mask.
func MaskQuerySecrets(text, mask string) string {
	return secretQuery.ReplaceAllString(text, "${1}"+mask)
}
