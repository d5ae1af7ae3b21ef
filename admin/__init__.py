"""The console for service agents, admins and marketers, mounted at ``/admin``."""

from admin.console import ConsoleDeps, ConsoleSettings, build_console

__all__ = ["ConsoleDeps", "ConsoleSettings", "build_console"]
