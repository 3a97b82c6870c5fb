# Varnish in front of Refract (VCL 4.1; Varnish 6 and 7). Set the backend address, then e.g.
#   varnishd -a :80 -f /etc/varnish/refract.vcl -s malloc,1g
#
# Works with both negotiation modes:
# - delivery.negotiate = "off": one variant per URL.
# - delivery.negotiate = "vary": Varnish honours Vary: Accept. Accept is first reduced to what
#   Refract reads ("accepts image/avif", "accepts image/webp"), so one URL has at most four
#   variants, and each client gets the one it can decode.
#
# Purge (all variants of a URL at once), from an address in the purgers ACL:
#   curl -X PURGE "http://127.0.0.1/img/photos/cat.jpg?w=800"
# (Refract itself needs no purge when an original is replaced: its keys carry the source's
# version. A deleted original's variants are dropped by Refract at once.)

vcl 4.1;

backend refract {
    .host = "127.0.0.1";
    .port = "8080";
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        return (purge);
    }
    if (req.url ~ "^/(img|cdn-cgi/image)/") {
        # q=0 means no.
        if (req.http.Accept ~ "(?i)image/avif" &&
            req.http.Accept !~ "(?i)image/avif\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$)") {
            set req.http.X-Refract-Avif = "1";
        }
        if (req.http.Accept ~ "(?i)image/webp" &&
            req.http.Accept !~ "(?i)image/webp\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$)") {
            set req.http.X-Refract-Webp = "1";
        }
        if (req.http.X-Refract-Avif && req.http.X-Refract-Webp) {
            set req.http.Accept = "image/avif,image/webp";
        } elsif (req.http.X-Refract-Avif) {
            set req.http.Accept = "image/avif";
        } elsif (req.http.X-Refract-Webp) {
            set req.http.Accept = "image/webp";
        } else {
            set req.http.Accept = "*/*";
        }
        unset req.http.X-Refract-Avif;
        unset req.http.X-Refract-Webp;
        # Images are public; a cookie must not make them uncacheable.
        unset req.http.Cookie;
    }
}

sub vcl_backend_response {
    # Keep serving what is held for a day while Refract is down (its answers carry
    # stale-if-error; Varnish's grace is how it honours that).
    set beresp.grace = 1d;
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Proxy-Cache = "HIT";
    } else {
        set resp.http.X-Proxy-Cache = "MISS";
    }
}
