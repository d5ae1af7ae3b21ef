"""The console for service agents, admins and marketers, mounted at ``/admin``."""

from admin.console import build_console
from admin.deps import ConsoleDeps, ConsoleSettings

__all__ = ["ConsoleDeps", "ConsoleSettings", "build_console"]
