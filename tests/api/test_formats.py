"""The Python twins of the CRD's formats: ports of the checks the children are validated with.

Expected verdicts are those of the Kubernetes functions they port
(``content.IsQualifiedName``, ``content.IsLabelValue``, ``resource.ParseQuantity``);
``e2e/test_admission_parity.py`` checks the same values against a real API server.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from gantry.api import formats as fmt


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("app", True),
        ("example.com/app", True),
        ("nvidia.com/gpu.product", True),
        ("A_b.C-1", True),
        ("a" * 63, True),
        ("a" * 64, False),
        (f"{'a' * 253}/x", True),
        (f"{'a' * 254}/x", False),
        ("", False),
        ("/app", False),
        ("Example.com/app", False),
        ("a/b/c", False),
        ("-app", False),
        ("app-", False),
        ("ex ample", False),
        ("app\n", False),
    ],
)
def test_qualified_name(value: str, valid: bool) -> None:
    assert fmt.is_qualified_name(value) is valid
    # The list pattern agrees, except that it bounds the whole key to 253 characters.
    pattern = bool(re.fullmatch(fmt.QUALIFIED_NAME_PATTERN, value)) and len(value) <= 253
    assert pattern is (valid and len(value) <= 253)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        ("v1", True),
        ("a.b_c-d", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-a", False),
        ("a-", False),
        ("a b", False),
        ("ä", False),
        ("a\n", False),  # Go's $ is the end of the text, never before a newline
    ],
)
def test_label_value(value: str, valid: bool) -> None:
    assert fmt.is_label_value(value) is valid
    assert bool(re.fullmatch(fmt.LABEL_VALUE_PATTERN, value)) is valid


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        ("1.", Decimal(1)),
        (".5", Decimal("0.5")),
        ("16Gi", Decimal(16 * 2**30)),
        ("1k", Decimal(1000)),
        ("1E", Decimal(10**18)),
        ("1e3", Decimal(1000)),
        ("1E-3", Decimal("0.001")),
        ("0.0001", Decimal("0.0001")),
        ("1n", Decimal("1e-9")),
        # Below a nano-unit, rounded up to it as ParseQuantity does.
        ("1e-12", Decimal("1e-9")),
        ("0", Decimal(0)),
        ("0e5", Decimal(0)),
        ("1e99", Decimal("1e99")),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert fmt.parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    # Not quantities at all, or forms the CRD refuses although ParseQuantity takes them:
    # signs, and exponents long enough to make the API server compute 10^huge.
    [
        *("", "1.5.5", "1e3m", "1K", "1 Gi", "Gi", "e3", "1\n", "0x10"),
        *("-1", "+1", "1e100", "1e2147483647"),
    ],
)
def test_refused_quantities(text: str) -> None:
    assert fmt.parse_quantity(text) is None
    assert not re.fullmatch(fmt.QUANTITY_PATTERN, text)


@pytest.mark.parametrize(
    ("text", "inclusive", "inside"),
    [
        ("1", False, True),
        ("0", False, False),
        ("0", True, True),
        ("1n", False, True),
        ("1M", False, True),
        ("1000001", False, False),
        ("1.0000001M", False, False),
        ("nonsense", False, True),  # the pattern's job, not the range's
    ],
)
def test_quantity_range(text: str, inclusive: bool, inside: bool) -> None:
    assert fmt.quantity_in_range(text, "0", "1M", lowest_inclusive=inclusive) is inside
    rule = fmt.quantity_cel("0", "1M", lowest_inclusive=inclusive)
    assert rule.startswith(f"!self.matches(r'{fmt.QUANTITY_PATTERN}') || ")


@pytest.mark.parametrize(
    ("image", "valid"),
    [
        ("nvcr.io/nvidia/tritonserver:25.01-py3", True),
        ("busybox", True),
        ("localhost:5000/a/b:v1", True),
        ("registry.example.com/team/model__server-x:1.0", True),
        (f"ghcr.io/a/b@sha256:{'a' * 64}", True),
        (f"ghcr.io/a/b:v1@sha256:{'a' * 64}", True),
        ("[::1]:5000/a", True),
        ("", False),
        ("nvcr.io/NVIDIA/tritonserver", False),
        ("tritonserver:latest ", False),
        (" tritonserver", False),
        ("triton server", False),
        ("a//b", False),
        ("a:", False),
        ("a@sha256:short", False),
        ("a:-tag", False),
    ],
)
def test_image(image: str, valid: bool) -> None:
    assert bool(re.fullmatch(fmt.IMAGE_PATTERN, image)) is valid


@pytest.mark.parametrize(
    ("uri", "valid"),
    [
        ("s3://models/resnet50", True),
        ("s3://models", True),
        ("gs://my_bucket/a/b", True),
        ("https://models.example/tiny.tar.gz", True),
        ("http://127.0.0.1:8080/m.pt?sig=1", True),
        ("pvc://model-store", True),
        ("pvc://model-store/repo/resnet50", True),
        ("file:///opt/models", True),
        ("file:///", True),
        ("s3://", False),
        ("s3:///key", False),
        ("s3://b/m", False),  # bucket names have 3 to 63 characters
        ("s3://Models/x", False),
        ("gs://", False),
        ("https://", False),
        ("https://host", False),
        ("https:///path", False),
        ("https://host/a b", False),
        ("pvc://", False),
        ("pvc:///path", False),
        ("pvc://Claim/x", False),
        ("pvc://claim/a/../b", False),
        ("pvc://claim/..", False),
        ("pvc://claim/a?b", False),
        ("file://relative", False),
        ("ftp://host/x", False),
        ("s3://models\n", False),
    ],
)
def test_model_uri(uri: str, valid: bool) -> None:
    assert fmt.is_model_uri(uri) is valid
