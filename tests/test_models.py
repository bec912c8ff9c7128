"""Models, fields, construction, relationships, the registry, the Rust plan and
pure-Python hydration (API.md §2; §15 checks 1, 3-7, 12-14; §16 rows 9, 10, 31-33, 37)."""

import base64
import copy
import datetime as dt
import enum
import gc
import json
import pickle
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar, Optional

import pytest

from aura import models
from aura._convert import to_storage
from aura.errors import (
    AuraError,
    AuraSchemaError,
    AuraValidationError,
    RelationshipNotLoadedError,
)
from aura.fields import MISSING, Field, FieldInfo
from aura.hydration import Hydrator, hydrate_rows
from aura.models import AuraModel, AuraModelMeta, Model, get_model, registered_models
from aura.vectors import Vector


@pytest.fixture(autouse=True)
def isolated_registry() -> Iterator[None]:
    """Each test starts from an empty registry, so its local model names never
    collide with models other test modules keep alive (§16 row 33)."""
    saved = dict(models._REGISTRY.items())
    pending = set(models._PENDING)
    models._REGISTRY.clear()
    models._PENDING.clear()
    yield
    models._REGISTRY.clear()
    models._REGISTRY.update(saved)
    models._PENDING.clear()
    models._PENDING.update(pending)


def error_of(exc_type: type[AuraError], fn: Any, *args: Any, **kwargs: Any) -> AuraError:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    return info.value


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Price(enum.Enum):
    CHEAP = Decimal("1.5")


def make_user() -> type[Model]:
    class User(Model):
        id: int = Field(primary_key=True)
        name: str

    return User


def make_library() -> tuple[type[Model], type[Model]]:
    class Author(Model):
        id: int = Field(primary_key=True)
        name: str
        books: list["Book"]

    class Book(Model):
        id: int = Field(primary_key=True)
        title: str
        author: Author = Field(link=True, on_delete="cascade")
        editor: Author | None = None

    return Author, Book


# --------------------------------------------------------------------------- fields


def test_model_is_aura_model() -> None:  # check 1 (models half)
    assert Model is AuraModel
    assert isinstance(Model, AuraModelMeta)


def test_missing_sentinel() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert type(MISSING)() is MISSING
    assert copy.deepcopy(MISSING) is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING


def test_field_returns_field_info_with_defaults() -> None:
    info = Field()
    assert isinstance(info, FieldInfo)
    assert (info.primary_key, info.unique, info.index, info.full_text) == (False,) * 4
    assert info.nullable is False and info.link is False
    assert info.default is MISSING and info.default_factory is None
    assert info.alias is None and info.description is None
    assert info.metadata == {} and info.on_delete is None and info.vector_index is None
    assert not info.has_default


def test_default_and_factory_together() -> None:  # check 3
    err = error_of(AuraSchemaError, Field, default=1, default_factory=list)
    assert err.code == "schema_error"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_delete": "explode"}, "on_delete must be one of"),
        ({"primary_key": True, "nullable": True}, "primary key cannot be nullable"),
        ({"default_factory": 3}, "default_factory must be a zero-argument callable"),
        ({"alias": ""}, "alias must be a non-empty str"),
        ({"metadata": [1]}, "metadata must be a mapping"),
    ],
)
def test_invalid_field_options(kwargs: dict[str, Any], message: str) -> None:
    assert message in error_of(AuraSchemaError, Field, **kwargs).message


@pytest.mark.parametrize("action", ["cascade", "restrict", "set_null"])
def test_on_delete_actions(action: str) -> None:
    assert Field(on_delete=action).on_delete == action


def test_field_info_derived_attributes() -> None:
    class Target(Model):
        id: int
        holder: "Holder | None" = None

    class Holder(Model):
        id: int
        n: int | None
        tags: list[str] = Field(default_factory=list, description="labels", metadata={"k": 1})
        doc: dict[str, int] = Field(default_factory=dict)
        emb: Vector[3]
        target: Target | None = None
        targets: list[Target] = Field(default_factory=list)
        nick: str = Field(alias="NICK")

    fields = Holder.__aura_fields__
    n, tags, doc, emb = fields["n"], fields["tags"], fields["doc"], fields["emb"]
    assert n.python_type is int and n.is_optional and n.nullable and n.default is None
    assert n.has_default and not n.is_required()
    assert tags.container == "list" and tags.description == "labels" and tags.metadata == {"k": 1}
    assert doc.container == "dict" and fields["id"].container == "none"
    assert emb.is_vector and emb.vector_dim == 3 and emb.is_required()
    target = fields["target"]
    assert target.is_model and target.model_type is Target and target.is_relationship
    assert not target.is_required() and target.container == "none"
    targets = fields["targets"]
    assert targets.is_relationship and targets.container == "list" and targets.model_type is Target
    assert fields["nick"].storage_name == "NICK" and fields["id"].storage_name == "id"
    assert fields["id"].name == "id" and fields["id"].owner is Holder
    assert list(fields) == ["id", "n", "tags", "doc", "emb", "target", "targets", "nick"]


def test_build_default_copies_containers() -> None:
    info = Field(default=[1, [2]])
    first, second = info.build_default(), info.build_default()
    assert first == [1, [2]] and first is not second and first[1] is not second[1]
    assert Field(default_factory=dict).build_default() == {}
    assert Field().build_default() is MISSING
    assert Field(default=5).build_default() == 5


# --------------------------------------------------------------------------- definition errors


def test_multiple_primary_keys() -> None:  # check 4
    with pytest.raises(AuraSchemaError, match=r"declares multiple primary keys"):

        class Twice(Model):
            a: int = Field(primary_key=True)
            b: int = Field(primary_key=True)


def test_link_requires_model_annotation() -> None:  # check 5
    with pytest.raises(AuraSchemaError) as info:

        class Bad(Model):
            x: int = Field(link=True)

    assert info.value.message == "Bad.x: link=True requires a model-typed annotation"


def test_optional_primary_key_is_rejected() -> None:
    with pytest.raises(AuraSchemaError, match=r"primary key cannot be nullable"):

        class Bad(Model):
            id: int | None = Field(primary_key=True)


@pytest.mark.parametrize(
    ("annotation", "options", "message"),
    [
        (int, {"on_delete": "cascade"}, "on_delete requires a to-one relationship"),
        (int, {"vector_index": "hnsw"}, "vector_index requires a Vector field"),
        (int, {"full_text": True}, "full_text requires a str field"),
        (list[int], {"primary_key": True}, "cannot be a primary key"),
    ],
)
def test_meaningless_option_combinations(annotation: Any, options: Any, message: str) -> None:
    namespace = {"__annotations__": {"x": annotation}, "x": Field(**options)}
    with pytest.raises(AuraSchemaError, match=message):
        AuraModelMeta("Bad", (Model,), namespace)


def test_field_without_annotation() -> None:
    with pytest.raises(AuraSchemaError, match=r"Field\(\) needs a type annotation"):

        class Bad(Model):
            x = Field(default=1)


def test_field_name_may_not_shadow_model_api() -> None:
    with pytest.raises(AuraSchemaError, match=r"shadows AuraModel.to_dict"):

        class Bad(Model):
            to_dict: int


def test_invalid_default_is_a_schema_error() -> None:
    with pytest.raises(AuraSchemaError, match=r"Default for Bad.x is invalid"):

        class Bad(Model):
            x: int = "a"  # type: ignore[assignment]


def test_classvar_and_dunder_annotations_are_not_fields() -> None:
    class Plain(Model):
        id: int
        registry: ClassVar[int] = 3
        other: "ClassVar[str]" = "x"
        __private__: int = 1

    assert list(Plain.__aura_fields__) == ["id"]
    assert Plain.registry == 3


def test_unresolvable_annotation_raises_on_first_use() -> None:
    class Lost(Model):
        id: int
        ghost: "Nowhere"  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(AuraSchemaError, match=r"Cannot resolve annotation 'Nowhere' of Lost.ghost"):
        Lost(id=1)
    with pytest.raises(AuraSchemaError, match=r"Cannot resolve annotation"):
        Lost._aura_plan()


def test_invalid_string_annotation() -> None:
    with pytest.raises(AuraSchemaError, match=r"Cannot evaluate annotation"):

        class Bad(Model):
            id: "int +"  # type: ignore[valid-type]  # noqa: F722


# --------------------------------------------------------------------------- construction


def test_missing_required_field() -> None:  # check 6
    User = make_user()
    err = error_of(AuraValidationError, User, id=1)
    assert err.code == "validation_error"
    assert err.message == "Missing required field User.name"
    assert err.context == {"model": "User", "field": "name"}


def test_unknown_keyword() -> None:  # check 7
    User = make_user()
    err = error_of(AuraValidationError, User, id=1, name="a", zzz=1)
    assert err.message == "User has no field 'zzz'"
    assert err.context["field"] == "zzz"


def test_positional_arguments_are_rejected() -> None:
    with pytest.raises(TypeError):
        make_user()(1, "a")


def test_a_field_may_be_called_self() -> None:
    class Odd(Model):
        self: int

    assert Odd(self=3).self == 3


def test_aliases_at_construction_and_in_to_dict() -> None:  # check 12, §16 row 9
    class Aliased(Model):
        id: int
        al: str = Field(alias="AL")

    assert Aliased(id=1, al="x").to_dict() == {"id": 1, "AL": "x"}
    by_alias = Aliased(id=1, AL="y")
    assert by_alias.al == "y" and by_alias.__dict__["al"] == "y"
    err = error_of(AuraValidationError, Aliased, id=1, al="x", AL="y")
    assert "given twice" in err.message


def test_defaults_and_factories() -> None:
    calls: list[int] = []

    def counter() -> int:
        calls.append(1)
        return len(calls)

    class Defaults(Model):
        id: int
        n: int = 5
        seq: int = Field(default_factory=counter)
        tags: list[str] = []
        nested: dict[str, list[int]] = Field(default={"a": [1]})
        note: str | None
        flag: bool = Field(nullable=True)

    first, second = Defaults(id=1), Defaults(id=2)
    assert first.n == 5 and (first.seq, second.seq) == (1, 2)
    assert first.tags == [] and first.tags is not second.tags
    assert first.nested == {"a": [1]} and first.nested["a"] is not second.nested["a"]
    assert first.note is None and first.flag is None


def test_factory_output_is_validated() -> None:
    class Bad(Model):
        id: int
        n: int = Field(default_factory=lambda: "x")

    with pytest.raises(AuraValidationError, match=r"Bad.n expects int, got str"):
        Bad(id=1)


# ------------------------------------------------------------- validation (§16 row 10)


class Scalars(Model):
    id: int
    f: float = 0.0
    s: str = ""
    b: bool = False
    raw: bytes = b""
    at: dt.datetime | None = None
    day: dt.date | None = None
    clock: dt.time | None = None
    uid: uuid.UUID | None = None
    price: Decimal | None = None
    color: Color | None = None
    level: Level | None = None


@pytest.mark.parametrize(
    ("field", "value", "expected", "got"),
    [
        ("id", "5", "int", "str"),
        ("id", True, "int", "bool"),
        ("id", 1.0, "int", "float"),
        ("id", None, "int", "NoneType"),
        ("f", "1.5", "float", "str"),
        ("f", False, "float", "bool"),
        ("f", Decimal("1"), "float", "Decimal"),
        ("s", 5, "str", "int"),
        ("s", None, "str", "NoneType"),
        ("b", 1, "bool", "int"),
        ("b", "true", "bool", "str"),
        ("raw", "abc", "bytes", "str"),
        ("at", dt.date(2024, 1, 1), "datetime", "date"),
        ("at", "not a date", "datetime", "str"),
        ("day", dt.datetime(2024, 1, 1), "date", "datetime"),
        ("clock", 5, "time", "int"),
        ("uid", "nope", "UUID", "str"),
        ("uid", 5, "UUID", "int"),
        ("price", 1.5, "Decimal", "float"),
        ("price", "x", "Decimal", "str"),
        ("color", "green", "Color", "str"),
        ("level", 7, "Level", "int"),
    ],
)
def test_scalar_type_errors(field: str, value: Any, expected: str, got: str) -> None:
    kwargs = {"id": 1, field: value}
    err = error_of(AuraValidationError, Scalars, **kwargs)
    assert err.message == f"Scalars.{field} expects {expected}, got {got}"
    assert err.context["field"] == field


def test_scalar_coercions() -> None:
    uid = uuid.uuid4()
    row = Scalars(
        id=1,
        f=2,
        raw=bytearray(b"ab"),
        at="2024-01-02T03:04:05+00:00",
        day="2024-01-02",
        clock="10:11:12",
        uid=str(uid),
        price="1.25",
        color="red",
        level=2,
    )
    assert row.f == 2.0 and type(row.f) is float
    assert row.raw == b"ab" and type(row.raw) is bytes
    assert row.at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert row.day == dt.date(2024, 1, 2) and row.clock == dt.time(10, 11, 12)
    assert row.uid == uid and row.price == Decimal("1.25")
    assert row.color is Color.RED and row.level is Level.HIGH
    assert Scalars(id=1, price=3).price == Decimal(3)


def test_exact_types_are_kept() -> None:
    now = dt.datetime.now()
    row = Scalars(id=7, f=1.5, s="x", b=True, at=now, color=Color.BLUE)
    assert row.__dict__["at"] is now and row.color is Color.BLUE and row.b is True


def test_containers() -> None:
    class Bag(Model):
        id: int
        nums: list[int] = []
        names: set[str] = set()
        pair: tuple[int, ...] = ()
        when: list[dt.date] = []
        doc: dict[str, int] = {}
        bare_list: list = []  # type: ignore[type-arg]
        bare_dict: dict = {}  # type: ignore[type-arg]
        maybe: list[int | None] = []

    bag = Bag(
        id=1,
        nums=(1, 2),
        names=["a", "a"],
        pair=[1, 2],
        when=["2024-01-01"],
        doc={"a": 1},
        bare_list=("x", 1),
        bare_dict={"k": object},
        maybe=[1, None],
    )
    assert bag.nums == [1, 2] and type(bag.nums) is list
    assert bag.names == {"a"} and bag.pair == (1, 2)
    assert bag.when == [dt.date(2024, 1, 1)]
    assert bag.bare_list == ["x", 1] and bag.maybe == [1, None]
    assert error_of(AuraValidationError, Bag, id=1, nums=["1"]).message == (
        "Bag.nums item expects int, got str"
    )
    assert error_of(AuraValidationError, Bag, id=1, nums="12").message == (
        "Bag.nums expects list, got str"
    )
    assert error_of(AuraValidationError, Bag, id=1, doc={"a": "b"}).message == (
        "Bag.doc item expects int, got str"
    )
    assert error_of(AuraValidationError, Bag, id=1, bare_dict=[1]).message == (
        "Bag.bare_dict expects dict, got list"
    )
    assert error_of(AuraValidationError, Bag, id=1, nums=[True]).message.endswith("got bool")


def test_vector_fields() -> None:
    class Doc(Model):
        id: int
        emb: Vector[3]
        loose: Vector | None = None

    doc = Doc(id=1, emb=[1, 0, 0])
    assert type(doc.emb) is Vector and doc.emb == [1.0, 0.0, 0.0]
    assert type(Doc(id=1, emb=Vector[3]([1, 2, 3])).emb) is Vector
    assert Doc(id=1, emb=[1, 2, 3], loose=[1.0]).loose == [1.0]
    err = error_of(AuraValidationError, Doc, id=1, emb=Vector([1, 2]))
    assert err.message == "Vector field 'emb' expects dimension 3, got 2"
    assert err.context == {"field": "emb", "expected": 3, "actual": 2}
    assert error_of(AuraValidationError, Doc, id=1, emb=[1, 2]).message == (
        "Vector expected dimension 3, got 2"
    )
    assert error_of(AuraValidationError, Doc, id=1, emb="abc").message == (
        "Doc.emb expects vector, got str"
    )
    with pytest.raises(AuraValidationError, match=r"finite"):
        Doc(id=1, emb=[1, 2, float("nan")])


def test_any_union_and_plain_class_fields() -> None:
    class Thing:
        pass

    class Loose(Model):
        id: int
        anything: Any = None
        either: int | str = 0
        thing: Thing | None = None

    assert Loose(id=1, anything=object).anything is object
    assert Loose(id=1, either="x").either == "x"
    thing = Thing()
    assert Loose(id=1, thing=thing).thing is thing
    assert error_of(AuraValidationError, Loose, id=1, thing=3).message == (
        "Loose.thing expects Thing, got int"
    )


# --------------------------------------------------------------------------- to_dict


class Everything(Model):
    id: uuid.UUID = Field(primary_key=True)
    raw: bytes
    at: dt.datetime
    day: dt.date
    clock: dt.time
    price: Decimal
    color: Color
    cheap: Price
    emb: Vector[2]
    names: set[str]
    doc: dict[str, Any]
    al: str = Field(alias="AL")


def everything() -> Everything:
    return Everything(
        id=uuid.UUID(int=1),
        raw=b"\x00\xff",
        at=dt.datetime(2024, 1, 2, 3, 4, 5),
        day=dt.date(2024, 1, 2),
        clock=dt.time(1, 2),
        price=Decimal("9.99"),
        color=Color.RED,
        cheap=Price.CHEAP,
        emb=[1, 2],
        names={"a"},
        doc={"when": dt.date(2024, 1, 1)},
        al="x",
    )


def test_to_dict_storage_form() -> None:  # check 12
    out = everything().to_dict()
    assert out == {
        "id": "00000000-0000-0000-0000-000000000001",
        "raw": {"__bytes__": base64.b64encode(b"\x00\xff").decode()},
        "at": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "clock": "01:02:00",
        "price": "9.99",
        "color": "red",
        "cheap": "1.5",
        "emb": [1.0, 2.0],
        "names": ["a"],
        "doc": {"when": "2024-01-01"},
        "AL": "x",
    }
    json.dumps(out)


def test_construction_from_to_dict_round_trips() -> None:
    original = everything()
    original.doc = {"k": [1, "x"]}  # Any values are stored as given, so keep them JSON-native
    assert Everything(**original.to_dict()) == original


# --------------------------------------------------------------------------- layout


def test_state_lives_in_dict_keyed_by_attribute() -> None:
    class Aliased(Model):
        id: int
        al: str = Field(alias="AL")

    row = Aliased(id=1, al="x")
    assert row.__dict__ == {"id": 1, "al": "x"}
    descriptor = Aliased.__dict__["al"]
    assert hasattr(descriptor, "__get__") and not hasattr(descriptor, "__set__")
    row.al = "y"
    assert row.__dict__["al"] == "y"


def test_projection_missing_field_is_an_attribute_error() -> None:
    User = make_user()
    partial = User._aura_hydrate_dict({"id": 1}, partial=True)
    with pytest.raises(AttributeError) as info:
        partial.name  # noqa: B018
    assert str(info.value) == (
        "User.name is not available; it was not selected in this query's projection"
    )
    assert not isinstance(info.value, RelationshipNotLoadedError)


def test_scores_attached_by_hydration() -> None:
    User = make_user()
    row = User._aura_hydrate_dict(
        {"id": 1, "name": "a", "__score__": 0.5, "__text_score__": None, "__rank__": 1}
    )
    assert row.__score__ == 0.5 and row.__text_score__ is None and row.__rank__ == 1
    assert "__vector_score__" not in row.__dict__


# --------------------------------------------------------------------------- value semantics


def test_primary_key_value() -> None:
    class Declared(Model):
        code: str = Field(primary_key=True)

    class Implicit(Model):
        id: int
        name: str

    class Keyless(Model):
        name: str

    assert Declared(code="a").primary_key_value() == "a"
    assert Implicit(id=3, name="x").primary_key_value() == 3
    assert Keyless(name="x").primary_key_value() is None


def test_equality_and_hash() -> None:
    User = make_user()

    class Other(Model):
        id: int = Field(primary_key=True)
        name: str

    class Keyless(Model):
        name: str

    a, b = User(id=1, name="a"), User(id=1, name="a")
    assert a == b and a != User(id=1, name="b") and a != Other(id=1, name="a")
    assert hash(a) == hash(b) == hash(("User", 1))
    assert len({a, b}) == 1
    k1, k2 = Keyless(name="x"), Keyless(name="x")
    assert k1 == k2 and hash(k1) != hash(k2)


def test_repr() -> None:
    User = make_user()
    assert repr(User(id=1, name="a")) == "User(id=1, name='a')"
    assert repr(User._aura_hydrate_dict({"id": 2}, partial=True)) == "User(id=2)"


def test_copy_does_not_share_link_state() -> None:
    _Author, Book = make_library()
    book = Book(id=1, title="t", author={"id": 1, "name": "a"})
    clone = copy.copy(book)
    clone.author = None
    assert book.__dict__["__aura_links__"] == {"author": 1}


def test_post_load_hook_only_after_hydration() -> None:
    seen: list[int] = []

    class Hooked(Model):
        id: int

        def __aura_post_load__(self) -> None:
            seen.append(self.id)

    Hooked(id=1)
    assert seen == []
    Hooked._aura_hydrate_dict({"id": 2})
    assert seen == [2]


# --------------------------------------------------------------------------- inheritance


def test_inheritance_parent_fields_first() -> None:
    class Base(Model):
        id: int
        name: str = "base"

    class Child(Base):
        extra: int = 0
        name: str = "child"

    assert list(Child.__aura_fields__) == ["id", "name", "extra"]
    assert Child(id=1).name == "child" and Base(id=1).name == "base"
    assert Child.__aura_fields__["id"] is not Base.__aura_fields__["id"]
    assert Child.__aura_fields__["id"].owner is Child
    assert get_model("Child") is Child and get_model("Base") is Base
    assert Child._aura_plan()[1] == "Child"


# --------------------------------------------------------------------------- relationships


def test_link_from_instance_or_mapping() -> None:
    Author, Book = make_library()
    rowling = Author(id=1, name="JK")
    book = Book(id=1, title="HP", author=rowling)
    assert book.author is rowling
    assert book.__dict__["__aura_links__"] == {"author": 1}
    built = Book(id=2, title="X", author={"id": 2, "name": "Y"})
    assert isinstance(built.author, Author) and built.author.name == "Y"
    assert built.to_dict() == {"id": 2, "title": "X", "author": 2}


def test_link_validation() -> None:
    _Author, Book = make_library()
    err = error_of(AuraValidationError, Book, id=1, title="t", author=5)
    assert err.message == "Expected Author instance or mapping, got int"
    err = error_of(AuraValidationError, Book, id=1, title="t", author=None)
    assert err.message == "Book.author expects Author, got NoneType"
    with pytest.raises(AuraValidationError, match=r"Missing required field Author.name"):
        Book(id=1, title="t", author={"id": 1})


def test_nullable_link_and_unloaded_access() -> None:
    _Author, Book = make_library()
    book = Book(id=1, title="t", editor=None)
    assert book.editor is None
    assert book.__dict__["__aura_links__"] == {"editor": None}
    with pytest.raises(RelationshipNotLoadedError) as info:
        book.author  # noqa: B018
    err = info.value
    assert err.code == "relationship_not_loaded" and not isinstance(err, AttributeError)
    assert err.context == {"relationship": "author"}
    assert err.message == "Book.author was not loaded; use .include('author')"
    assert book.to_dict() == {"id": 1, "title": "t", "editor": None}
    assert book.to_dict(include_unloaded=True)["author"] is None


def test_collections() -> None:
    Author, Book = make_library()
    author = Author(id=1, name="a", books=[Book(id=1, title="x"), {"id": 2, "title": "y"}])
    assert [b.title for b in author.books] == ["x", "y"]
    assert author.to_dict() == {"id": 1, "name": "a"}
    err = error_of(AuraValidationError, Author, id=1, name="a", books=[3])
    assert err.message == "Expected Book instance or mapping, got int"
    err = error_of(AuraValidationError, Author, id=1, name="a", books="x")
    assert err.message == "Author.books expects list[Book], got str"
    with pytest.raises(RelationshipNotLoadedError, match=r"Author.books was not loaded"):
        Author(id=2, name="b").books  # noqa: B018


def test_assigning_links() -> None:
    Author, Book = make_library()
    book = Book(id=1, title="t")
    other = Author(id=9, name="o")
    book.author = other
    assert book.author is other and book.__dict__["__aura_links__"]["author"] == 9
    book.author = {"id": 10, "name": "m"}
    assert book.author.id == 10 and book.__dict__["__aura_links__"]["author"] == 10
    book.editor = None
    assert book.editor is None and book.__dict__["__aura_links__"]["editor"] is None
    book.author = 11  # a bare key: known FK, relationship not loaded
    assert book.__dict__["__aura_links__"]["author"] == 11
    with pytest.raises(RelationshipNotLoadedError):
        book.author  # noqa: B018
    assert book.to_dict()["author"] == 11


def test_forward_references_and_via() -> None:
    Author, Book = make_library()
    assert Author.__aura_fields__["books"].model_type is Book
    assert Author.__aura_fields__["books"].via == "author"
    assert Author._aura_plan()[4] == [
        {"attr": "books", "target": "Book", "kind": "collection", "via": "author"}
    ]


def test_mutual_forward_references_resolve_lazily() -> None:  # §16 row 32
    class Left(Model):
        id: int
        right: "Right | None" = None
        rights: "list[Right]"

    assert not Left._aura_is_ready

    class Right(Model):
        id: int
        left: Left | None = None

    assert Left._aura_is_ready
    assert Left.__aura_fields__["right"].model_type is Right
    assert Left.__aura_fields__["rights"].via == "left"
    assert Left(id=1, right={"id": 2}).right.id == 2


def test_self_reference() -> None:
    class Node(Model):
        id: int
        parent: "Node | None" = None
        children: list["Node"]

    info = Node.__aura_fields__["children"]
    assert info.model_type is Node and info.via == "parent"
    a = Node(id=1)
    b = Node(id=2, parent=a)
    a.parent = b  # a cycle: repr must still terminate
    assert "..." in repr(a)


def test_collection_without_back_link() -> None:
    class Tag(Model):
        id: int

    with pytest.raises(AuraSchemaError, match=r"Post.tags: Tag has no link pointing back to Post"):

        class Post(Model):
            id: int
            tags: list[Tag]

    class Early(Model):  # the target comes later: reported at first use
        id: int
        items: list["Item"]

    class Item(Model):
        id: int

    with pytest.raises(AuraSchemaError, match=r"Item has no link pointing back to Early"):
        Early(id=1)


def test_models_only_as_link_or_list() -> None:
    class Target(Model):
        id: int

    with pytest.raises(AuraSchemaError, match=r"models can only be referenced"):

        class Bad(Model):
            id: int
            nested: dict[str, Target]


# --------------------------------------------------------------------------- registry


def test_registry() -> None:
    User = make_user()
    assert get_model("User") is User and get_model("Nope") is None
    snapshot = registered_models()
    snapshot.clear()
    assert registered_models()["User"] is User
    assert "AuraModel" not in registered_models()


def test_same_module_redefinition_replaces() -> None:
    first = make_user()
    second = make_user()
    assert first is not second and get_model("User") is second


def elsewhere(name: str, module: str) -> Any:
    return AuraModelMeta(name, (Model,), {"__module__": module, "__annotations__": {"id": int}})


def test_same_name_in_another_module_is_an_error() -> None:  # §16 row 33
    kept = elsewhere("Clash", "pkg.one")
    with pytest.raises(AuraSchemaError, match=r"already registered by module 'pkg.one'"):
        elsewhere("Clash", "pkg.two")
    assert get_model("Clash") is kept


def test_a_dead_class_does_not_block_its_name() -> None:
    elsewhere("Gone", "pkg.one")
    gc.collect()
    assert elsewhere("Gone", "pkg.two").__module__ == "pkg.two"


# --------------------------------------------------------------------------- the Rust plan


PLAN_KEYS = [
    "attr",
    "storage",
    "kind",
    "nullable",
    "unique",
    "index",
    "has_default",
    "full_text",
    "vector_dim",
    "target",
    "on_delete",
    "load",
    "dump",
]


def test_plan_shape() -> None:
    _Author, Book = make_library()
    cls, name, pk, fields, relationships = Book._aura_plan()
    assert (cls, name, pk) == (Book, "Book", "id")
    assert all(list(f) == PLAN_KEYS for f in fields)
    assert [f["attr"] for f in fields] == ["id", "title", "author", "editor"]
    author = fields[2]
    assert author["kind"] == "link" and author["target"] == "Author"
    assert author["on_delete"] == "cascade" and author["nullable"] is False
    assert fields[3]["nullable"] is True and fields[3]["has_default"] is True
    assert relationships == [
        {"attr": "author", "target": "Author", "kind": "link", "via": None},
        {"attr": "editor", "target": "Author", "kind": "link", "via": None},
    ]
    assert Book._aura_plan() is Book._aura_plan()  # compiled once


def test_plan_kinds_and_converters() -> None:
    class Kinds(Model):
        k: int = Field(primary_key=True, alias="K")
        f: float
        s: str = Field(full_text=True, unique=True, index=True)
        b: bool
        raw: bytes
        at: dt.datetime
        day: dt.date
        clock: dt.time
        uid: uuid.UUID
        price: Decimal
        color: Color
        ints: list[int]
        names: set[str]
        dates: list[dt.date]
        doc: dict[str, int]
        bare: dict  # type: ignore[type-arg]
        emb: Vector[4] = Field(vector_index="hnsw")
        anything: Any
        either: int | str

    _cls, _name, pk, fields, _ = Kinds._aura_plan()
    assert pk == "K"
    plan = {f["attr"]: f for f in fields}
    kinds = {attr: f["kind"] for attr, f in plan.items()}
    assert kinds == {
        "k": "int", "f": "float", "s": "str", "b": "bool", "raw": "bytes",
        "at": "datetime", "day": "date", "clock": "time", "uid": "uuid",
        "price": "decimal", "color": "enum", "ints": "list", "names": "list",
        "dates": "list", "doc": "dict", "bare": "dict", "emb": "vector",
        "anything": "any", "either": "any",
    }  # fmt: skip
    native = ["k", "f", "s", "b", "raw", "emb", "ints", "doc"]
    assert all(plan[a]["load"] is None and plan[a]["dump"] is None for a in native)
    assert plan["clock"]["load"] is None and plan["anything"]["load"] is None
    assert plan["bare"]["load"] is None and plan["names"]["load"] is None
    for attr in ("at", "day", "uid", "price", "color", "dates"):
        assert callable(plan[attr]["load"]) and callable(plan[attr]["dump"])
    for attr in ("clock", "names", "bare", "anything"):
        assert plan[attr]["dump"] is to_storage
    assert plan["emb"]["vector_dim"] == 4 and plan["s"]["full_text"] and plan["s"]["unique"]
    load = {attr: f["load"] for attr, f in plan.items()}
    assert load["at"]("2024-01-02T03:04:05") == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert load["day"]("2024-01-02") == dt.date(2024, 1, 2)
    assert load["day"]("2024-01-02T00:00:00") == dt.date(2024, 1, 2)
    assert load["uid"](str(uuid.UUID(int=5))) == uuid.UUID(int=5)
    assert load["price"]("1.10") == Decimal("1.10") and load["price"](2) == Decimal(2)
    assert load["color"]("blue") is Color.BLUE
    assert load["dates"](["2024-01-01", None]) == [dt.date(2024, 1, 1), None]
    assert plan["dates"]["dump"]([dt.date(2024, 1, 1)]) == ["2024-01-01"]
    with pytest.raises(AuraValidationError, match=r"Cannot read a datetime from a stored int"):
        load["at"](5)


def test_enum_with_non_json_values_loads_from_storage_form() -> None:
    class Priced(Model):
        id: int
        cheap: Price

    load = Priced._aura_plan()[3][1]["load"]
    assert load("1.5") is Price.CHEAP


def test_plan_without_primary_key_and_collections_excluded() -> None:
    Author, _Book = make_library()

    class Keyless(Model):
        name: str

    assert Keyless._aura_plan()[2] is None
    assert [f["attr"] for f in Author._aura_plan()[3]] == ["id", "name"]


# --------------------------------------------------------------------------- hydration


def test_hydrate_dict_loads_storage_form() -> None:
    row = everything().to_dict()
    back = Everything._aura_hydrate_dict(row)
    assert back.at == dt.datetime(2024, 1, 2, 3, 4, 5) and back.day == dt.date(2024, 1, 2)
    assert back.id == uuid.UUID(int=1) and back.raw == b"\x00\xff"
    assert back.price == Decimal("9.99") and back.color is Color.RED
    assert back.cheap is Price.CHEAP and type(back.emb) is Vector
    assert back.names == ["a"]  # containers read back as lists (§2.3)
    assert back.clock == "01:02:00"  # time is not coerced on read (§2.3)
    assert back.al == "x" and back.__dict__["al"] == "x"


def test_hydrate_native_coercions() -> None:
    class Coerced(Model):
        id: int
        flag: bool
        ratio: float
        label: str
        tags: list  # type: ignore[type-arg]
        doc: dict  # type: ignore[type-arg]

    row = Coerced._aura_hydrate_dict(
        {"id": "3", "flag": 1, "ratio": 2, "label": 5, "tags": '["a", 1]', "doc": '{"k": [1]}'}
    )
    assert row.id == 3 and row.flag is True and row.ratio == 2.0 and row.label == "5"
    assert row.tags == ["a", 1] and row.doc == {"k": [1]}  # §16 row 31


def test_hydrate_missing_fields() -> None:
    class Row(Model):
        id: int
        name: str
        note: str | None
        n: int = 4

    err = error_of(AuraValidationError, Row._aura_hydrate_dict, {"id": 1})
    assert err.message == "Missing required field Row.name in result row"
    full = Row._aura_hydrate_dict({"id": 1, "name": "a"})
    assert full.note is None and full.n == 4
    partial = Row._aura_hydrate_dict({"id": 1}, partial=True)
    assert partial.__dict__ == {"id": 1}


def test_hydrate_links_and_collections() -> None:
    Author, Book = make_library()
    fetched = Book._aura_hydrate_dict({"id": 1, "title": "t", "author": 7, "editor": None})
    assert fetched.__dict__["__aura_links__"] == {"author": 7, "editor": None}
    with pytest.raises(RelationshipNotLoadedError):
        fetched.author  # noqa: B018
    with pytest.raises(RelationshipNotLoadedError):
        fetched.editor  # noqa: B018  (a null FK that was not included)
    assert fetched.to_dict() == {"id": 1, "title": "t", "author": 7, "editor": None}  # row 37

    included = Book._aura_hydrate_dict(
        {"id": 1, "title": "t", "author": {"id": 7, "name": "a"}, "editor": None},
        included={"author", "editor"},
    )
    assert included.author.name == "a" and included.editor is None
    assert included.__dict__["__aura_links__"] == {"author": 7, "editor": None}

    author = Author._aura_hydrate_dict(
        {"id": 7, "name": "a", "books": [{"id": 1, "title": "t", "author": 7}]}
    )
    assert [b.title for b in author.books] == ["t"]
    empty = Author._aura_hydrate_dict({"id": 8, "name": "b"}, included={"books"})
    assert empty.books == []


def test_hydration_module() -> None:
    User = make_user()
    rows = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert [u.name for u in hydrate_rows(User, rows)] == ["a", "b"]
    assert hydrate_rows(User, [{"id": 3}], partial=True)[0].__dict__ == {"id": 3}
    err = error_of(AuraValidationError, hydrate_rows, User, [{"id": 3}])
    assert err.message == "Missing required field User.name in result row"
    hydrator = Hydrator(User)
    assert hydrator({"id": 4, "name": "d"}) == User(id=4, name="d")
    with pytest.raises(AuraValidationError, match=r"Expected a mapping row for User"):
        hydrator.hydrate([1, "a"])  # type: ignore[arg-type]
    with pytest.raises(AuraSchemaError):
        Hydrator(dict)  # type: ignore[type-var]


# --------------------------------------------------------------------------- field references


def test_class_access_gives_field_reference_ir() -> None:  # checks 13 and 14
    expressions = pytest.importorskip("aura.query.expressions")

    class User(Model):
        id: int = Field(primary_key=True)
        meta: dict[str, Any] = Field(default_factory=dict)
        email: str = Field(alias="EMAIL")

    assert isinstance(User.id, expressions.FieldReference)
    assert User.id is User.id
    assert (User.id == 1).to_ir() == {
        "kind": "compare",
        "op": "eq",
        "left": {"kind": "field", "model": "User", "field": "id"},
        "right": {"kind": "literal", "value": 1},
    }
    assert (User.meta["a"]["b"] == 3).to_ir()["left"]["path"] == ["a", "b"]
    assert User.email.storage == "EMAIL"  # §16 row 9
    assert (User.email == "x").to_ir()["left"]["field"] == "EMAIL"


# --------------------------------------------------------------------------- speed


def test_mapping_rows_are_accepted() -> None:
    class Frozen(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> Any:
            return self._data[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    User = make_user()
    assert User._aura_hydrate_dict(Frozen({"id": 1, "name": "a"})).name == "a"


def test_optional_spelling() -> None:
    class Opt(Model):
        id: int
        a: Optional[int]  # noqa: UP045

    assert Opt(id=1).a is None and Opt.__aura_fields__["a"].nullable


def test_instances_pickle_and_deepcopy() -> None:
    row = Scalars(id=1, s="x", at=dt.datetime(2024, 1, 1), color=Color.RED)
    assert pickle.loads(pickle.dumps(row)) == row
    assert copy.deepcopy(row) == row


def test_vector_default_is_validated_once() -> None:
    class Embedded(Model):
        id: int
        emb: Vector[2] = [0, 0]  # type: ignore[assignment]

    first, second = Embedded(id=1), Embedded(id=2)
    assert type(first.emb) is Vector and first.emb == [0.0, 0.0]
    assert first.emb is second.emb  # immutable, so shared
    with pytest.raises(AuraSchemaError, match=r"Default for Short.emb is invalid"):

        class Short(Model):
            emb: Vector[2] = [0]  # type: ignore[assignment]


def test_defining_a_model_makes_no_visible_instance() -> None:
    """Defining a model prepares its instances' shared layout without any
    instance a user could see: no __del__ runs, no setter of a mixin's
    property, no __getattribute__, and abstract models stay definable."""
    import abc

    deleted: list[Any] = []
    set_ranks: list[Any] = []

    class Finalized(Model):
        id: int = Field(primary_key=True)

        def __del__(self) -> None:
            deleted.append(self.__dict__.get("id"))

    class _Ranked:
        @property
        def __rank__(self) -> int:
            return int(self.__dict__["__rank__"])

        @__rank__.setter
        def __rank__(self, value: int) -> None:
            set_ranks.append(value)

    class WithSetter(_Ranked, Model):
        id: int = Field(primary_key=True)

    class AbstractMeta(AuraModelMeta, abc.ABCMeta):
        pass

    class AbstractBase(Model, metaclass=AbstractMeta):
        id: int = Field(primary_key=True)

        @abc.abstractmethod
        def kind(self) -> str: ...

    class Concrete(AbstractBase):
        def kind(self) -> str:
            return "concrete"

    class Guarded(Model):
        id: int = Field(primary_key=True)

        def __getattribute__(self, name: str) -> Any:
            if name == "__dict__":
                raise RuntimeError("no dict access")
            return object.__getattribute__(self, name)

    gc.collect()
    assert deleted == [] and set_ranks == []
    assert Concrete(id=1).kind() == "concrete" and WithSetter(id=2).id == 2
    assert Guarded.__name__ == "Guarded"
    Finalized(id=3)
    gc.collect()
    assert deleted == [3]
