"""The policy model, its parsers, the environment reader and the store.

Other meshclient packages import the policy types from here (the package's public face),
never from its `_` modules."""

from ._authn import HMAC_ALGORITHMS, AuthenticationPolicy, ClaimToHeader, JwtHeader, JwtRule
from ._authz import AuthzPolicyEntry, Condition, FromItem, Operation, Rule, Source, ToItem
from ._checks import ExtAuthzHttpPolicy, ExtensionProvider
from ._discovery import DiscoveryPolicy, HealthPolicy
from ._document import MAX_DOCUMENT_BYTES
from ._duration import format_duration, parse_duration
from ._env import (
    VARIABLES,
    AccessLogSettings,
    EnvSettings,
    TrustSettings,
    access_log_from_env,
    env_value,
    policy_from_env,
    settings_from_env,
    trust_from_env,
)
from ._fields import HEADER_NAME
from ._limitkey import LimitKey, parse_limit_key
from ._model import (
    BackoffPolicy,
    BalancerPolicy,
    BreakerPolicy,
    BudgetPolicy,
    Defaults,
    EndpointSpec,
    HedgePolicy,
    OutlierPolicy,
    Policy,
    RetryPolicy,
    Service,
    ServicePolicy,
    TimeoutPolicy,
)
from ._parse import (
    load_policy_file,
    merge_documents,
    policy_from_dict,
    policy_from_text,
    policy_to_dict,
    section_errors,
)
from ._routing import AbortFault, FaultPolicy, RouteMatch, RouteRule
from ._security import (
    AuthorizationPolicy,
    AuthPolicy,
    AuthzRule,
    BearerPolicy,
    LimitsPolicy,
    OAuth2Policy,
    TlsPolicy,
)
from ._store import PolicyStore, default_store

__all__ = [
    "HEADER_NAME",
    "HMAC_ALGORITHMS",
    "MAX_DOCUMENT_BYTES",
    "VARIABLES",
    "AbortFault",
    "AccessLogSettings",
    "AuthPolicy",
    "AuthenticationPolicy",
    "AuthorizationPolicy",
    "AuthzPolicyEntry",
    "AuthzRule",
    "BackoffPolicy",
    "BalancerPolicy",
    "BearerPolicy",
    "BreakerPolicy",
    "BudgetPolicy",
    "ClaimToHeader",
    "Condition",
    "Defaults",
    "DiscoveryPolicy",
    "EndpointSpec",
    "EnvSettings",
    "ExtAuthzHttpPolicy",
    "ExtensionProvider",
    "FaultPolicy",
    "FromItem",
    "HealthPolicy",
    "HedgePolicy",
    "JwtHeader",
    "JwtRule",
    "LimitKey",
    "LimitsPolicy",
    "OAuth2Policy",
    "Operation",
    "OutlierPolicy",
    "Policy",
    "PolicyStore",
    "RetryPolicy",
    "RouteMatch",
    "RouteRule",
    "Rule",
    "Service",
    "ServicePolicy",
    "Source",
    "TimeoutPolicy",
    "TlsPolicy",
    "ToItem",
    "TrustSettings",
    "access_log_from_env",
    "default_store",
    "env_value",
    "format_duration",
    "load_policy_file",
    "merge_documents",
    "parse_duration",
    "parse_limit_key",
    "policy_from_dict",
    "policy_from_env",
    "policy_from_text",
    "policy_to_dict",
    "section_errors",
    "settings_from_env",
    "trust_from_env",
]
