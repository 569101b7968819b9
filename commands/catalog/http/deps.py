"""What the catalog area's endpoints need, provided by the composition root through
``app.state.catalog``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from commands.catalog.inventory import InventoryCommands
from commands.catalog.products import CatalogCommands
from commands.catalog.reviews import ReviewCommands


@dataclass(frozen=True)
class CatalogServices:
    catalog: CatalogCommands
    inventory: InventoryCommands
    reviews: ReviewCommands


async def _services(request: Request) -> CatalogServices:
    services: CatalogServices = request.app.state.catalog
    return services


Services = Annotated[CatalogServices, Depends(_services)]
