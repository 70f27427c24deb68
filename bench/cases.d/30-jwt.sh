# shellcheck shell=bash
# JWT validation (issue: security and traffic components): the json endpoint (d) behind
# `auth/validator` (RS256), beside the same endpoint without it, so the difference in CPU per
# request is the cost of checking a token. The key pair and the token are made once here with
# openssl; the JWK set is a static file of the backend nginx, fetched once by Sluice (`cache`)
# over plain http (`disable_jwk_security`: loopback, bench only).

command -v openssl >/dev/null || apt_install openssl

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt.key" 2>/dev/null
modulus_hex=$(openssl rsa -in "$WORK/jwt.key" -noout -modulus | sed 's/^Modulus=//')
# The modulus as bytes (hex pairs to \x escapes), then base64url; the exponent is 65537.
jwk_n=$(printf '%b' "$(printf '%s' "$modulus_hex" | sed 's/../\\x&/g')" | b64url)
printf '{"keys":[{"kty":"RSA","kid":"bench","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}' \
    "$jwk_n" >"$WORK/www/jwks.json"

jwt_header=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url)
jwt_claims=$(printf '{"iss":"https://bench.example","aud":"bench","sub":"user-1","roles":["user"],"exp":%d}' \
    "$(($(date +%s) + 86400))" | b64url)
jwt_signature=$(printf '%s.%s' "$jwt_header" "$jwt_claims" |
    openssl dgst -sha256 -sign "$WORK/jwt.key" -binary | b64url)
jwt_token="$jwt_header.$jwt_claims.$jwt_signature"

# (j0) the json endpoint again, unprotected, declared beside (j) so the two compare directly.
# It gets the same request, token included: the difference is what checking the token costs,
# not what reading a 700-byte header costs.
sluice_endpoint '{"endpoint": "/jwt-open", "backend": [{"url_pattern": "/data.json"}]}'
bench_case "(j0) sluice json, no JWT" "$SLUICE_URL/jwt-open"
bench_header "(j0) sluice json, no JWT" "Authorization: Bearer $jwt_token"

# (j) the same endpoint, the token checked on every request (signature, issuer, audience,
# expiry, roles) against the cached key.
sluice_endpoint "{\"endpoint\": \"/jwt\", \"backend\": [{\"url_pattern\": \"/data.json\"}],
    \"extra_config\": {\"auth/validator\": {\"alg\": \"RS256\", \"jwk_url\": \"$BACKEND_URL/jwks.json\",
        \"disable_jwk_security\": true, \"cache\": true, \"issuer\": \"https://bench.example\",
        \"audience\": [\"bench\"], \"roles\": [\"user\"]}}}"
bench_case "(j) sluice json, JWT RS256" "$SLUICE_URL/jwt"
bench_header "(j) sluice json, JWT RS256" "Authorization: Bearer $jwt_token"
