"""Orders -> Catalog HTTP contract: Orders' client writes the pact, a real Catalog honours it.

Consumer tests come first: each runs the real `CatalogClient` against Pact's mock server and
adds its interaction to the session's pact file. The provider test replays that file against
a real `catalog-api` process. The last tests show the contract catching a break from either
side.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pact import Pact, match

from tests.contract.catalog_pact import (
    BATCH_LOOKUP,
    CONSUMER,
    EXPECTATIONS,
    PRODUCT_A,
    PRODUCT_B,
    PROVIDER,
    Expectation,
    item,
    record,
    run_consumer,
)
from tests.contract.fake_catalog import FakeCatalog
from tests.contract.provider import CatalogDatabaseStates, failures, verifier_for


@pytest.mark.parametrize("expectation", EXPECTATIONS, ids=["known-and-unknown", "none-known"])
async def test_catalog_client_against_the_pact_mock(
    expectation: Expectation, pact_dir: Path
) -> None:
    await run_consumer(expectation, pact_dir)


@pytest.mark.integration
def test_real_catalog_honours_the_orders_pact(
    orders_pact: Path, catalog_url: str, catalog_states: CatalogDatabaseStates
) -> None:
    verifier = verifier_for(orders_pact, catalog_url, catalog_states)
    try:
        verifier.verify()
    except RuntimeError:
        pytest.fail(f"Catalog broke the pact:\n{verifier.output(strip_ansi=True)}")


def test_a_fake_catalog_with_the_same_fields_honours_the_pact(orders_pact: Path) -> None:
    # The control for the next test: the fake fails there only because of the renamed field.
    with FakeCatalog() as fake:
        verifier_for(orders_pact, fake.url, fake.states).verify()


def test_renaming_price_cents_in_catalog_breaks_verification(orders_pact: Path) -> None:
    with FakeCatalog(price_field="price") as fake:
        verifier = verifier_for(orders_pact, fake.url, fake.states)
        with pytest.raises(RuntimeError):
            verifier.verify()
    broken = failures(verifier)
    assert list(broken) == [BATCH_LOOKUP.description]  # the empty lookup still passes
    assert broken[BATCH_LOOKUP.description] == [
        f"$.items[{i}]: Actual map is missing the following keys: price_cents" for i in (0, 1)
    ]


@pytest.mark.integration
def test_orders_expecting_a_field_catalog_does_not_send_breaks_verification(
    tmp_path: Path, catalog_url: str, catalog_states: CatalogDatabaseStates
) -> None:
    wants_weight = dataclasses.replace(
        BATCH_LOOKUP,
        items=(
            item(PRODUCT_A, weight_grams=match.int(250)),
            item(PRODUCT_B, weight_grams=match.int(250)),
        ),
    )
    record(Pact(CONSUMER, PROVIDER), wants_weight).write_file(tmp_path)
    verifier = verifier_for(tmp_path, catalog_url, catalog_states)
    with pytest.raises(RuntimeError):
        verifier.verify()
    assert failures(verifier) == {
        BATCH_LOOKUP.description: [
            f"$.items[{i}]: Actual map is missing the following keys: weight_grams" for i in (0, 1)
        ]
    }
