"""The backends' end-to-end tests run the collector on the collector tests' documents, so they share its fixtures."""
from tests.data_processor.conftest import collect, docs_dir  # noqa: F401 - pytest finds fixtures by name here
