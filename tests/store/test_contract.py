"""The tracking-store contract on SQLite, PostgreSQL and the REST store against a real server."""

from keel.testing.dataset_contract import DatasetStoreContract, PipelineStoreContract
from keel.testing.deployment_contract import DeploymentStoreContract
from keel.testing.model_contract import ModelStoreContract
from keel.testing.store_contract import TrackingStoreContract


class TestTrackingStore(TrackingStoreContract):
    pass


class TestDatasetStore(DatasetStoreContract):
    pass


class TestPipelineStore(PipelineStoreContract):
    pass


class TestModelStore(ModelStoreContract):
    pass


class TestDeploymentStore(DeploymentStoreContract):
    pass
