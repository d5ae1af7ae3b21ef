"""The customer's own portal, mounted at ``/portal`` and opened from chat."""

from portal.app import build_portal
from portal.deps import PortalDeps, PortalSettings

__all__ = ["PortalDeps", "PortalSettings", "build_portal"]
