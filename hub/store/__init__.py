"""Users and routes tables with atomic persistence: the supervisor writes,
every process reads its broadcast copy."""

from __future__ import annotations

from .persist import StoreFileError, atomic_write_json, load_json
from .routes import Route, RouteTable, mask_password
from .users import User, UserTable, first_start, public_dict

__all__ = ["Route", "RouteTable", "StoreFileError", "User", "UserTable", "atomic_write_json",
           "first_start", "load_json", "mask_password", "public_dict"]
