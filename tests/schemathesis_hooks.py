"""Schemathesis hooks: how to generate values the server's format checks accept.

``format: email`` is checked for real (as Pydantic's EmailStr does), so schemathesis must
generate real addresses, not any string with an ``@``, for its positive-data checks.
"""

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.format("email", st.from_regex(r"\A[a-z0-9]{1,20}(\.[a-z0-9]{1,10})?@[a-z0-9]{1,20}\.(com|org|net)\Z"))
