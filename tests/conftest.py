from __future__ import annotations

import importlib
import multiprocessing

import pytest
from django.test import Client

from conversations.models import Conversation, ModelConfig, User

# A live-server browser test can hang after async tests with the default "fork".
multiprocessing.set_start_method("spawn", force=True)

PASSWORD = "correct horse battery staple"


def make_user(username: str, **extra: object) -> User:
    return User.objects.create_user(username, password=PASSWORD, **extra)  # type: ignore[arg-type]


@pytest.fixture
def alice(db: None) -> User:
    """Alice owns conversations."""
    return make_user("alice", first_name="Alice")


@pytest.fixture
def bob(db: None) -> User:
    """Bob is Alice's teammate."""
    return make_user("bob", first_name="Bob")


@pytest.fixture
def charlie(db: None) -> User:
    """Charlie is a stranger to Alice."""
    return make_user("charlie", first_name="Charlie")


@pytest.fixture
def staff(db: None) -> User:
    return make_user("sam", is_staff=True, is_superuser=True)


def ensure_registry_seed() -> None:
    """Transactional tests flush the tables, seed rows included: put them back."""
    from django.apps import apps

    seed_migration = importlib.import_module("conversations.migrations.0002_seed_models")
    if ModelConfig.objects.filter(name__in=["deepseek-chat", "deepseek-reasoner"]).count() != 2:
        seed_migration.seed(apps, None)


@pytest.fixture
def chat_model(db: None) -> ModelConfig:
    ensure_registry_seed()
    return ModelConfig.objects.get(name="deepseek-chat")


@pytest.fixture
def reasoner_model(db: None) -> ModelConfig:
    ensure_registry_seed()
    return ModelConfig.objects.get(name="deepseek-reasoner")


@pytest.fixture
def alice_conversation(alice: User, chat_model: ModelConfig) -> Conversation:
    return Conversation.objects.create(owner=alice, model=chat_model, title="Deploy notes")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
