"""String formats the children's APIs enforce, as patterns, CEL and Python checks.

Each format exists three times: a regular expression or CEL rule that goes into
the CRD (the API server's gate), and a Python check with the same verdict for
pydantic (``gantry render`` and the operator's own parse). The Python checks are
ports of the Kubernetes functions the children are validated with
(``k8s.io/apimachinery/pkg/api/validate/content``, ``resource.ParseQuantity``),
so a value refused here is one a Deployment, HPA or HTTPRoute would refuse too,
and the reverse for everything this module calls valid.

The patterns are written for three regex engines at once (Go's RE2 in the API
server, Rust's in pydantic-core, Python's ``re`` here): no look-around, no
back-references, ASCII classes spelled out instead of ``\\w`` or ``\\s``. Python's
``$`` also matches before a final newline, Go's does not, so Python matches whole
strings (``fullmatch``).
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Final

# -- names (k8s.io/apimachinery/pkg/api/validate/content) -------------------------------------

DNS1123_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN: Final = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
_LABEL_NAME: Final = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_NAME_MAX = 63
LABEL_VALUE_MAX = 63

# As schema patterns (no CEL cost, which matters for strings deep inside lists). A label
# key's prefix may be 253 characters on its own; the pattern bounds the name part and the
# schema bounds the whole key to 253, which only refuses keys no one writes.
QUALIFIED_NAME_PATTERN: Final = (
    rf"^({DNS1123_SUBDOMAIN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN: Final = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"

_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{DNS1123_SUBDOMAIN}$")
_LABEL_NAME_RE = re.compile(rf"^{_LABEL_NAME}$")
_LABEL_VALUE_RE = re.compile(rf"^({_LABEL_NAME})?$")

# The same checks as CEL: the API server's own implementations (format library, 1.31+).
CEL_QUALIFIED_NAME: Final = "!format.qualifiedName().validate({}).hasValue()"
CEL_LABEL_VALUE: Final = "!format.labelValue().validate({}).hasValue()"

QUALIFIED_NAME_MESSAGE: Final = (
    "must be a label key: an optional DNS subdomain prefix and '/', then a name of at most "
    "63 alphanumerics, '-', '_' or '.' that starts and ends alphanumeric (e.g. example.com/my-key)"
)
LABEL_VALUE_MESSAGE: Final = (
    "must be a label value: empty, or at most 63 alphanumerics, '-', '_' or '.' that starts "
    "and ends alphanumeric"
)


def is_dns1123_subdomain(value: str) -> bool:
    """``content.IsDNS1123Subdomain`` (object names, priority classes, label key prefixes)."""
    return len(value) <= DNS1123_SUBDOMAIN_MAX and bool(_DNS1123_SUBDOMAIN_RE.fullmatch(value))


def is_qualified_name(value: str) -> bool:
    """``content.IsQualifiedName``: label keys, taint keys, topology keys."""
    parts = value.split("/")
    if len(parts) > 2:
        return False
    if len(parts) == 2 and not is_dns1123_subdomain(parts[0]):
        return False
    name = parts[-1]
    return 0 < len(name) <= LABEL_NAME_MAX and bool(_LABEL_NAME_RE.fullmatch(name))


def is_label_value(value: str) -> bool:
    """``content.IsLabelValue``."""
    return len(value) <= LABEL_VALUE_MAX and bool(_LABEL_VALUE_RE.fullmatch(value))


# -- quantities (k8s.io/apimachinery/pkg/api/resource) ----------------------------------------

# A subset of resource.ParseQuantity's grammar: unsigned, and exponents of at most two
# digits. Larger exponents are not a convenience but a hazard: the API server compares
# quantities with arbitrary-precision arithmetic, and comparing "1e2147483647" with zero
# computes 10^2147483647, which keeps a kube-apiserver core busy for hours. CEL's quantity()
# uses the same code, so the CRD checks this pattern before it ever calls quantity().
QUANTITY_PATTERN: Final = (
    r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([numkMGTPE]|[KMGTPE]i|[eE][-+]?[0-9]{1,2})?$"
)
QUANTITY_MAX_LENGTH = 32
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_DECIMAL_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15}
_DECIMAL_SUFFIX["E"] = 18
_BINARY_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_NANO = Decimal("1e-9")
# Enough digits for any value the pattern admits (32 characters, "e99" at most), to the nano.
_PRECISION = 256


def parse_quantity(text: str) -> Decimal | None:
    """The value of a quantity in :data:`QUANTITY_PATTERN`, as ``ParseQuantity`` computes it.

    Non-zero values below one nano-unit round up to it, as in the API server. Returns
    None for anything outside the pattern (including forms the API server would take,
    such as signs and long exponents, which the CRD refuses).
    """
    match = _QUANTITY_RE.fullmatch(text)
    if match is None:
        return None
    number, suffix = match.group(1), match.group(3) or ""
    with localcontext(prec=_PRECISION):
        value = Decimal(number)
        if suffix in _BINARY_SUFFIX:
            value *= 2 ** _BINARY_SUFFIX[suffix]
        elif suffix in _DECIMAL_SUFFIX:
            value = value.scaleb(_DECIMAL_SUFFIX[suffix])
        else:
            value = value.scaleb(int(suffix[1:]))
    if value and value < _NANO:
        return _NANO
    with localcontext(prec=_PRECISION):
        return value.quantize(_NANO, rounding=ROUND_CEILING)


def quantity_cel(lowest: str, highest: str, *, lowest_inclusive: bool) -> str:
    """A CEL rule: the quantity lies in its range; only called once the pattern holds."""
    low = (
        f"quantity(self).compareTo(quantity('{lowest}')) >= 0"
        if lowest_inclusive
        else f"quantity(self).isGreaterThan(quantity('{lowest}'))"
    )
    return (
        f"!self.matches(r'{QUANTITY_PATTERN}') || ({low} && "
        f"quantity(self).compareTo(quantity('{highest}')) <= 0)"
    )


def quantity_in_range(text: str, lowest: str, highest: str, *, lowest_inclusive: bool) -> bool:
    """Python twin of :func:`quantity_cel` (True for text outside the pattern: not its job)."""
    value = parse_quantity(text)
    if value is None:
        return True
    low, high = parse_quantity(lowest), parse_quantity(highest)
    if low is None or high is None:
        raise ValueError(f"bounds {lowest!r}, {highest!r} are not quantities")
    return (value >= low if lowest_inclusive else value > low) and value <= high


# -- container images (github.com/distribution/reference) ------------------------------------

_DOMAIN_COMPONENT = r"([A-Za-z0-9]|[A-Za-z0-9][-A-Za-z0-9]*[A-Za-z0-9])"
_DOMAIN = rf"({_DOMAIN_COMPONENT}(\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(:[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][-A-Za-z0-9_.]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
# name[:tag][@digest], the grammar container runtimes parse an image with. The API server
# only refuses surrounding whitespace; anything else outside this grammar fails at pull
# time, as ErrImagePull on every pod, long after `kubectl apply` said "created".
IMAGE_PATTERN: Final = (
    rf"^({_DOMAIN}/)?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*(:{_TAG})?(@{_DIGEST})?$"
)
IMAGE_MAX_LENGTH = 512

# -- model URIs -------------------------------------------------------------------------------

# Printable ASCII without space; the pvc path also without '?' and '#', which a URL
# parser would cut off (so the path mounted would not be the one written).
_URI_CHARS = r"[!-~]"
_PVC_PATH_CHARS = r"[!-\"$->@-~]"
_HOST = rf"({_DOMAIN_COMPONENT}(\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(:[0-9]{{1,5}})?"
_S3_BUCKET = r"[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]"
_GCS_BUCKET = r"[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9]"
# Every scheme with every part it needs: a bucket, a host and a path to fetch, a claim
# (its path inside the claim is optional), an absolute path inside the image.
MODEL_URI_PATTERN: Final = (
    rf"^(s3://{_S3_BUCKET}(/{_URI_CHARS}*)?"
    rf"|gs://{_GCS_BUCKET}(/{_URI_CHARS}*)?"
    rf"|https?://{_HOST}/{_URI_CHARS}+"
    rf"|pvc://{DNS1123_SUBDOMAIN}(/{_PVC_PATH_CHARS}*)?"
    rf"|file:///{_URI_CHARS}*)$"
)
# The claim's sub-path is a volume subPath: the API server refuses '..' elements.
MODEL_URI_CEL: Final = "!self.startsWith('pvc://') || !self.split('/').exists(s, s == '..')"
MODEL_URI_CEL_MESSAGE: Final = "a pvc:// path must not contain '..' elements"
_MODEL_URI_RE = re.compile(MODEL_URI_PATTERN)


def model_uri_path_ok(uri: str) -> bool:
    """Python twin of :data:`MODEL_URI_CEL`."""
    return not uri.startswith("pvc://") or ".." not in uri.split("/")


def is_model_uri(uri: str) -> bool:
    return bool(_MODEL_URI_RE.fullmatch(uri)) and model_uri_path_ok(uri)


__all__ = [
    "CEL_LABEL_VALUE",
    "CEL_QUALIFIED_NAME",
    "DNS1123_LABEL",
    "DNS1123_SUBDOMAIN",
    "IMAGE_PATTERN",
    "MODEL_URI_PATTERN",
    "QUANTITY_PATTERN",
    "is_dns1123_subdomain",
    "is_label_value",
    "is_model_uri",
    "is_qualified_name",
    "parse_quantity",
    "quantity_cel",
    "quantity_in_range",
]
