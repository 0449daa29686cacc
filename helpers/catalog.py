"""The sample product catalog the workbook ships: generated, in the Amazon Reviews 2023 metadata schema.

Real Amazon data cannot be downloaded offline, so we generate a realistic catalog from a seed and ship
it (`data/sample_catalog.jsonl.gz`); `python -m helpers.catalog` rebuilds it byte for byte.

How a price is made (documented so the noise floor can be computed):

    expected = base(product type) × brand tier(category) × Π spec multipliers × grade
    price    = expected × exp(N(0, NOISE_SIGMA²))          (rounded to cents)

The spec multipliers follow the specs that drive real prices: capacity and wattage through power laws,
pack count nearly linearly, material, warranty years and pro/commercial grade as factors, some of them
interacting with the product type. The best possible predictor knows `expected` exactly and still misses
by the noise: its error is the noise floor (`oracle_prices`).
"""

from __future__ import annotations

import gzip
import json
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers.paths import DATA_DIR

SEED = 2026
N_RECORDS = 32_000
NOISE_SIGMA = 0.12
CATALOG_PATH = DATA_DIR / "sample_catalog.jsonl.gz"

# --------------------------------------------------------------------------------------------------
# What the catalog is made of
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A numeric spec: values to draw from, how it is written, and its price elasticity."""

    name: str
    values: tuple[float, ...]
    unit: str
    elasticity: float  # price ∝ (value / first value) ** elasticity


@dataclass(frozen=True)
class ProductType:
    noun: str
    base: float  # price in dollars of the cheapest configuration from a mid-tier brand
    specs: tuple[Spec, ...] = ()
    materials: tuple[tuple[str, float], ...] = ()
    pack: bool = False  # sold in packs of n (price nearly linear in n)
    grade_factor: float = 1.6  # what "Pro"/"Commercial" grade multiplies for this type
    adjectives: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()


def S(name, values, unit, elasticity):  # noqa: N802  (a short constructor keeps the tables readable)
    return Spec(name, tuple(values), unit, elasticity)


CATEGORIES: dict[str, list[ProductType]] = {
    "Appliances": [
        ProductType("Refrigerator Water Filter", 14, (), (), True, 1.2, ("NSF certified", "replacement"), ("kitchen",)),
        ProductType(
            "Countertop Microwave",
            75,
            (
                S("capacity", [0.7, 0.9, 1.1, 1.2, 1.6, 2.2], "cu ft", 0.8),
                S("power", [700, 900, 1000, 1100, 1200], "W", 0.5),
            ),
            (("stainless steel", 1.25), ("black", 1.0), ("white", 0.95)),
            False,
            1.5,
            ("compact", "digital"),
            ("office", "dorm", "kitchen"),
        ),
        ProductType(
            "Dishwasher Rack Wheel",
            6,
            (),
            (("nylon", 1.0), ("plastic", 0.8)),
            True,
            1.1,
            ("replacement",),
            ("dishwasher",),
        ),
        ProductType(
            "Washing Machine",
            520,
            (S("capacity", [3.5, 4.0, 4.5, 5.0, 5.3], "cu ft", 1.1),),
            (("stainless steel drum", 1.15), ("porcelain drum", 1.0)),
            False,
            1.3,
            ("front load", "top load", "high efficiency"),
            ("laundry room",),
        ),
        ProductType(
            "Dryer Vent Hose",
            12,
            (S("length", [4, 6, 8, 10, 25], "ft", 0.5),),
            (("aluminum", 1.0), ("vinyl", 0.7)),
            False,
            1.4,
            ("flexible", "crush resistant"),
            ("dryer",),
        ),
        ProductType(
            "Ice Maker",
            110,
            (S("output", [26, 33, 40, 45, 80], "lbs per day", 0.9),),
            (("stainless steel", 1.2), ("plastic", 1.0)),
            False,
            2.0,
            ("portable", "countertop", "self-cleaning"),
            ("parties", "home bar"),
        ),
        ProductType(
            "Range Hood",
            150,
            (S("width", [24, 30, 36], "inch", 1.0), S("airflow", [220, 300, 400, 600], "CFM", 0.6)),
            (("stainless steel", 1.2), ("black", 1.0)),
            False,
            1.8,
            ("under cabinet", "wall mount", "ducted"),
            ("kitchen",),
        ),
        ProductType(
            "Stand Mixer",
            180,
            (S("bowl size", [3.5, 4.5, 5, 6, 7], "quart", 0.9), S("power", [250, 325, 500, 1000], "W", 0.4)),
            (("stainless steel bowl", 1.1), ("glass bowl", 1.0)),
            False,
            1.6,
            ("tilt-head", "bowl-lift", "10-speed"),
            ("baking", "bread dough"),
        ),
        ProductType(
            "Air Fryer",
            60,
            (S("capacity", [2, 3.7, 5.8, 6, 8, 10], "quart", 0.7),),
            (("stainless steel", 1.2), ("plastic", 1.0)),
            False,
            1.4,
            ("digital", "dual basket", "oil-free"),
            ("family meals", "snacks"),
        ),
    ],
    "Automotive": [
        ProductType(
            "Wiper Blade",
            11,
            (S("length", [16, 18, 20, 22, 24, 26, 28], "inch", 0.4),),
            (("beam", 1.2), ("conventional", 0.8), ("silicone", 1.5)),
            True,
            1.2,
            ("all-season", "streak-free"),
            ("cars", "SUVs", "trucks"),
        ),
        ProductType(
            "Car Battery",
            130,
            (S("cold cranking amps", [500, 600, 700, 800, 900], "CCA", 1.0),),
            (("AGM", 1.5), ("lead acid", 1.0)),
            False,
            1.3,
            ("maintenance-free", "group 24", "group 35"),
            ("cars", "trucks"),
        ),
        ProductType(
            "Synthetic Motor Oil",
            28,
            (S("volume", [1, 5], "quart", 0.85),),
            (("full synthetic", 1.3), ("synthetic blend", 1.0)),
            True,
            1.2,
            ("5W-30", "0W-20", "10W-40"),
            ("gasoline engines",),
        ),
        ProductType(
            "Floor Mats",
            35,
            (),
            (("rubber", 1.0), ("carpet", 0.9), ("TPE all-weather", 2.4)),
            False,
            1.5,
            ("custom fit", "heavy duty", "trim-to-fit"),
            ("cars", "SUVs"),
        ),
        ProductType(
            "Tire Inflator",
            40,
            (S("max pressure", [100, 120, 150], "PSI", 0.8),),
            (("cordless", 1.6), ("12V plug-in", 1.0)),
            False,
            2.2,
            ("portable", "digital gauge", "auto shut-off"),
            ("car tires", "bikes", "balls"),
        ),
        ProductType(
            "Dash Cam",
            55,
            (S("resolution", [1080, 1440, 2160], "p", 1.1), S("storage", [32, 64, 128], "GB", 0.2)),
            (),
            False,
            1.9,
            ("front and rear", "night vision", "WiFi"),
            ("cars", "rideshare"),
        ),
        ProductType(
            "Brake Pad Set",
            38,
            (),
            (("ceramic", 1.3), ("semi-metallic", 1.0), ("organic", 0.8)),
            False,
            1.7,
            ("front", "rear", "low dust"),
            ("sedans", "trucks"),
        ),
        ProductType(
            "Jump Starter",
            70,
            (S("peak current", [1000, 1500, 2000, 3000, 4000], "A", 0.8),),
            (),
            False,
            2.0,
            ("portable", "lithium", "with LED light"),
            ("gas engines", "diesel engines"),
        ),
        ProductType(
            "Spark Plug",
            6,
            (),
            (("iridium", 2.0), ("platinum", 1.4), ("copper", 1.0)),
            True,
            1.2,
            ("OEM", "long life"),
            ("engines",),
        ),
    ],
    "Cell Phones & Accessories": [
        ProductType(
            "Phone Case",
            9,
            (),
            (("silicone", 1.0), ("leather", 2.8), ("TPU", 0.9), ("rugged polycarbonate", 1.7)),
            False,
            1.3,
            ("slim", "shockproof", "magnetic"),
            ("iPhone 15", "Galaxy S24", "Pixel 8"),
        ),
        ProductType(
            "Screen Protector",
            7,
            (),
            (("tempered glass", 1.0), ("privacy glass", 1.7), ("film", 0.6)),
            True,
            1.2,
            ("9H hardness", "bubble-free"),
            ("iPhone 15", "Galaxy S24"),
        ),
        ProductType(
            "USB-C Charger",
            14,
            (S("power", [20, 30, 45, 65, 100, 140], "W", 0.75),),
            (("GaN", 1.3), ("standard", 1.0)),
            False,
            1.4,
            ("fast charging", "foldable plug"),
            ("phones", "tablets", "laptops"),
        ),
        ProductType(
            "Power Bank",
            22,
            (S("capacity", [5000, 10000, 20000, 26800, 40000], "mAh", 0.7),),
            (("aluminum", 1.2), ("plastic", 1.0)),
            False,
            1.5,
            ("slim", "with display", "magnetic"),
            ("travel", "camping"),
        ),
        ProductType(
            "Charging Cable",
            8,
            (S("length", [1, 3, 6, 10], "ft", 0.3),),
            (("braided nylon", 1.4), ("PVC", 1.0)),
            True,
            1.3,
            ("fast charge", "durable"),
            ("phones", "tablets"),
        ),
        ProductType(
            "Unlocked Smartphone",
            230,
            (S("storage", [64, 128, 256, 512, 1024], "GB", 0.35),),
            (),
            False,
            1.0,
            ("5G", "dual SIM", "triple camera"),
            ("everyday use",),
        ),
        ProductType(
            "Wireless Earbuds",
            35,
            (S("battery life", [20, 24, 30, 36, 50], "hours", 0.4),),
            (),
            False,
            2.4,
            ("noise cancelling", "waterproof", "bluetooth 5.3"),
            ("workouts", "commuting"),
        ),
        ProductType(
            "Car Phone Mount",
            15,
            (),
            (("magnetic", 1.2), ("clamp", 1.0), ("suction cup", 0.9)),
            False,
            1.4,
            ("360 rotation", "one-hand"),
            ("dashboard", "air vent"),
        ),
        ProductType(
            "Smartwatch Band",
            11,
            (),
            (("silicone", 1.0), ("stainless steel", 2.2), ("leather", 2.0), ("nylon", 1.1)),
            True,
            1.2,
            ("adjustable", "quick release"),
            ("Apple Watch", "Galaxy Watch"),
        ),
    ],
    "Electronics": [
        ProductType(
            "HDMI Cable",
            9,
            (S("length", [3, 6, 10, 15, 25, 50], "ft", 0.55),),
            (("braided", 1.3), ("standard", 1.0)),
            True,
            1.3,
            ("4K", "8K", "high speed"),
            ("TVs", "monitors", "consoles"),
        ),
        ProductType(
            "Computer Monitor",
            140,
            (S("size", [22, 24, 27, 32, 34], "inch", 1.6), S("refresh rate", [60, 75, 144, 165, 240], "Hz", 0.45)),
            (),
            False,
            1.6,
            ("IPS", "curved", "ultrawide"),
            ("gaming", "office work"),
        ),
        ProductType(
            "Portable SSD",
            55,
            (S("capacity", [500, 1000, 2000, 4000], "GB", 0.75),),
            (("aluminum", 1.1), ("rugged rubber", 1.3)),
            False,
            1.4,
            ("USB 3.2", "shock resistant"),
            ("backups", "video editing"),
        ),
        ProductType(
            "Bluetooth Speaker",
            30,
            (S("output", [5, 10, 20, 30, 60], "W", 0.7),),
            (("fabric", 1.0), ("rubberized", 1.1)),
            False,
            2.0,
            ("waterproof", "portable", "stereo pairing"),
            ("beach", "parties", "showers"),
        ),
        ProductType(
            "Wireless Mouse",
            14,
            (S("DPI", [1600, 2400, 4000, 8000, 16000], "DPI", 0.35),),
            (),
            False,
            2.5,
            ("ergonomic", "silent click", "rechargeable"),
            ("laptops", "gaming"),
        ),
        ProductType(
            "Mechanical Keyboard",
            45,
            (),
            (("aluminum frame", 1.7), ("plastic frame", 1.0)),
            False,
            2.2,
            ("RGB", "hot-swappable", "tenkeyless"),
            ("gaming", "typing"),
        ),
        ProductType(
            "Security Camera",
            35,
            (S("resolution", [1080, 1440, 2160], "p", 1.0),),
            (("indoor", 1.0), ("outdoor weatherproof", 1.5)),
            True,
            1.7,
            ("night vision", "two-way audio", "motion alerts"),
            ("home", "garage"),
        ),
        ProductType(
            "Noise Cancelling Headphones",
            70,
            (S("battery life", [20, 30, 40, 60], "hours", 0.4),),
            (),
            False,
            3.0,
            ("over-ear", "bluetooth", "foldable"),
            ("travel", "office"),
        ),
        ProductType(
            "Smart TV",
            260,
            (S("screen size", [32, 43, 50, 55, 65, 75], "inch", 1.7),),
            (("4K UHD", 1.0), ("QLED", 1.5), ("OLED", 2.6)),
            False,
            1.0,
            ("HDR", "voice remote", "streaming apps"),
            ("living room", "bedroom"),
        ),
    ],
    "Musical Instruments": [
        ProductType(
            "Guitar Strings",
            8,
            (),
            (("nickel wound", 1.0), ("phosphor bronze", 1.2), ("coated", 1.8)),
            True,
            1.2,
            ("light gauge", "medium gauge"),
            ("acoustic guitar", "electric guitar"),
        ),
        ProductType(
            "Acoustic Guitar",
            160,
            (),
            (("laminate top", 1.0), ("solid spruce top", 1.9), ("all solid wood", 3.6)),
            False,
            1.3,
            ("dreadnought", "concert", "cutaway"),
            ("beginners", "performing"),
        ),
        ProductType(
            "Digital Piano",
            380,
            (S("keys", [61, 76, 88], "keys", 1.2),),
            (("weighted keys", 1.4), ("semi-weighted keys", 1.0)),
            False,
            1.5,
            ("with stand", "portable", "bluetooth MIDI"),
            ("practice", "stage"),
        ),
        ProductType(
            "Guitar Picks",
            5,
            (),
            (("celluloid", 1.0), ("nylon", 1.1), ("tortex", 1.3)),
            True,
            1.1,
            ("assorted", "medium"),
            ("guitar", "bass"),
        ),
        ProductType(
            "Microphone",
            50,
            (),
            (("dynamic", 1.0), ("condenser", 1.7), ("USB condenser", 1.4)),
            False,
            2.6,
            ("cardioid", "studio", "podcast"),
            ("vocals", "streaming"),
        ),
        ProductType(
            "Drum Sticks",
            10,
            (),
            (("hickory", 1.0), ("maple", 1.1), ("nylon tip hickory", 1.3)),
            True,
            1.2,
            ("5A", "7A", "5B"),
            ("drum kits", "practice pads"),
        ),
        ProductType(
            "Guitar Amplifier",
            90,
            (S("power", [10, 20, 40, 50, 100], "W", 0.8),),
            (("solid state", 1.0), ("tube", 2.2)),
            False,
            1.8,
            ("combo", "with effects"),
            ("practice", "gigs"),
        ),
        ProductType(
            "Keyboard Stand",
            30,
            (),
            (("steel", 1.0), ("aluminum", 1.5)),
            False,
            1.6,
            ("X-style", "adjustable"),
            ("keyboards", "digital pianos"),
        ),
        ProductType(
            "Audio Interface",
            100,
            (S("inputs", [1, 2, 4, 8], "inputs", 0.8),),
            (),
            False,
            2.0,
            ("USB-C", "24-bit/192kHz"),
            ("home recording", "podcasts"),
        ),
    ],
    "Office Products": [
        ProductType(
            "Ballpoint Pens",
            1.2,
            (),
            (("plastic", 1.0), ("metal", 3.0)),
            True,
            1.3,
            ("retractable", "medium point", "quick dry"),
            ("office", "school"),
        ),
        ProductType(
            "Copy Paper",
            7,
            (S("sheets", [500, 2500, 5000], "sheets", 0.95),),
            (),
            True,
            1.1,
            ("letter size", "92 bright", "20 lb"),
            ("printers", "copiers"),
        ),
        ProductType(
            "Sticky Notes",
            1.1,
            (),
            (("standard", 1.0), ("super sticky", 1.4)),
            True,
            1.2,
            ("3x3 inch", "assorted colors"),
            ("office", "study"),
        ),
        ProductType(
            "Office Chair",
            120,
            (),
            (("mesh", 1.0), ("leather", 1.5), ("fabric", 0.9)),
            False,
            2.4,
            ("ergonomic", "lumbar support", "adjustable arms"),
            ("home office", "gaming"),
        ),
        ProductType(
            "Standing Desk",
            210,
            (S("width", [40, 48, 55, 63, 72], "inch", 0.9),),
            (("laminate top", 1.0), ("bamboo top", 1.4), ("solid wood top", 2.0)),
            False,
            1.8,
            ("electric", "height adjustable", "dual motor"),
            ("home office",),
        ),
        ProductType(
            "Label Printer",
            40,
            (),
            (("thermal", 1.0),),
            False,
            2.5,
            ("bluetooth", "portable"),
            ("shipping labels", "organizing"),
        ),
        ProductType(
            "Paper Shredder",
            45,
            (S("sheet capacity", [6, 8, 12, 18, 24], "sheets", 0.9),),
            (("cross-cut", 1.0), ("micro-cut", 1.4)),
            False,
            2.6,
            ("quiet", "with basket"),
            ("home office", "business"),
        ),
        ProductType(
            "File Folders",
            0.6,
            (),
            (("manila", 1.0), ("plastic", 2.2), ("recycled", 0.9)),
            True,
            1.2,
            ("letter size", "1/3 cut tab"),
            ("filing cabinets",),
        ),
        ProductType(
            "Whiteboard",
            30,
            (S("width", [24, 36, 48, 72], "inch", 1.3),),
            (("melamine", 1.0), ("porcelain", 1.9), ("glass", 2.4)),
            False,
            1.5,
            ("magnetic", "dry erase", "with tray"),
            ("classroom", "office"),
        ),
    ],
    "Tools & Home Improvement": [
        ProductType(
            "Cordless Drill",
            55,
            (S("voltage", [12, 18, 20, 24], "V", 0.9),),
            (("brushless", 1.5), ("brushed", 1.0)),
            False,
            2.3,
            ("with 2 batteries", "compact", "2-speed"),
            ("woodworking", "home repairs"),
        ),
        ProductType(
            "LED Light Bulb",
            2.5,
            (S("brightness", [450, 800, 1100, 1600], "lumens", 0.6),),
            (("dimmable", 1.3), ("standard", 1.0), ("smart WiFi", 3.5)),
            True,
            1.2,
            ("soft white", "daylight"),
            ("lamps", "ceiling fixtures"),
        ),
        ProductType(
            "Wood Screws",
            0.08,
            (S("length", [1, 1.5, 2, 2.5, 3], "inch", 0.6),),
            (("zinc plated steel", 1.0), ("stainless steel", 2.2)),
            True,
            1.3,
            ("Phillips", "Torx", "self-tapping"),
            ("decks", "furniture"),
        ),
        ProductType(
            "Tape Measure",
            9,
            (S("length", [16, 25, 30, 35], "ft", 0.6),),
            (),
            False,
            2.0,
            ("magnetic tip", "auto lock"),
            ("construction", "DIY"),
        ),
        ProductType(
            "Circular Saw",
            80,
            (S("blade size", [6.5, 7.25, 10.25], "inch", 1.1), S("power", [10, 13, 15], "amp", 0.7)),
            (("cordless", 1.4), ("corded", 1.0)),
            False,
            2.2,
            ("with laser guide", "lightweight"),
            ("framing", "plywood"),
        ),
        ProductType(
            "Smart Door Lock",
            95,
            (),
            (("keypad", 1.0), ("fingerprint", 1.6), ("WiFi", 1.4)),
            False,
            1.5,
            ("keyless entry", "auto lock"),
            ("front doors", "rental homes"),
        ),
        ProductType(
            "Paint Roller Kit",
            12,
            (S("pieces", [5, 9, 12, 15], "pieces", 0.5),),
            (("microfiber", 1.2), ("polyester", 1.0)),
            False,
            1.6,
            ("with tray", "extension pole"),
            ("walls", "ceilings"),
        ),
        ProductType(
            "Shop Vacuum",
            70,
            (S("capacity", [2.5, 4, 6, 9, 12, 16], "gallon", 0.8), S("peak power", [2, 3.5, 5, 6.5], "HP", 0.5)),
            (("stainless steel tank", 1.3), ("plastic tank", 1.0)),
            False,
            1.8,
            ("wet/dry", "with blower port"),
            ("garage", "workshop"),
        ),
        ProductType(
            "Socket Set",
            30,
            (S("pieces", [20, 40, 108, 200, 300], "pieces", 0.6),),
            (("chrome vanadium", 1.0), ("impact grade", 1.6)),
            False,
            2.4,
            ("SAE and metric", "with case"),
            ("auto repair", "home"),
        ),
    ],
    "Toys & Games": [
        ProductType(
            "Building Blocks Set",
            18,
            (S("pieces", [100, 250, 500, 1000, 1500, 3000], "pieces", 0.75),),
            (),
            False,
            1.0,
            ("creative", "compatible with major brands"),
            ("kids ages 6+", "adults"),
        ),
        ProductType(
            "Jigsaw Puzzle",
            12,
            (S("pieces", [300, 500, 1000, 1500, 2000], "pieces", 0.5),),
            (("cardboard", 1.0), ("wooden", 2.5)),
            False,
            1.0,
            ("landscape", "family"),
            ("adults", "families"),
        ),
        ProductType(
            "Board Game",
            22,
            (S("players", [2, 4, 6, 8], "players", 0.25),),
            (),
            False,
            1.0,
            ("strategy", "party", "cooperative"),
            ("family game night", "ages 10+"),
        ),
        ProductType(
            "Remote Control Car",
            35,
            (S("top speed", [15, 20, 30, 40, 55], "mph", 1.0),),
            (("plastic", 1.0), ("metal chassis", 1.5)),
            False,
            2.8,
            ("4WD", "off-road", "rechargeable"),
            ("kids", "hobbyists"),
        ),
        ProductType(
            "Plush Toy",
            12,
            (S("height", [8, 12, 16, 24, 36], "inch", 0.9),),
            (("polyester", 1.0), ("organic cotton", 1.7)),
            False,
            1.0,
            ("soft", "huggable"),
            ("toddlers", "gifts"),
        ),
        ProductType(
            "Drone",
            60,
            (S("flight time", [10, 15, 20, 30, 45], "minutes", 1.0), S("camera", [720, 1080, 2160], "p", 0.6)),
            (),
            False,
            2.5,
            ("foldable", "GPS", "beginner friendly"),
            ("aerial photos", "kids"),
        ),
        ProductType(
            "Playing Cards",
            3,
            (),
            (("paper", 1.0), ("plastic", 3.0)),
            True,
            1.2,
            ("standard index", "casino grade"),
            ("poker", "magic tricks"),
        ),
        ProductType(
            "Dollhouse",
            75,
            (S("rooms", [4, 6, 8, 12], "rooms", 0.8),),
            (("plastic", 1.0), ("wooden", 1.8)),
            False,
            1.0,
            ("with furniture", "3-story"),
            ("kids ages 3+",),
        ),
        ProductType(
            "Science Kit",
            20,
            (S("experiments", [10, 20, 50, 100], "experiments", 0.5),),
            (),
            False,
            1.0,
            ("STEM", "educational"),
            ("kids ages 8+", "classrooms"),
        ),
    ],
}

# Brand tiers per category: (factor, brands). The brand name is in every title, as on Amazon.
TIERS = {"budget": 0.55, "value": 0.8, "mid": 1.0, "premium": 1.7, "luxury": 2.9}
BRAND_SYLLABLES = (
    "Ar",
    "Bel",
    "Cor",
    "Dyn",
    "El",
    "Fen",
    "Gal",
    "Hex",
    "Iv",
    "Jor",
    "Kel",
    "Lum",
    "Mar",
    "Nov",
    "Or",
    "Pax",
    "Quin",
    "Ros",
    "Sol",
    "Tor",
    "Ul",
    "Ven",
    "Wex",
    "Zan",
)
BRAND_ENDINGS = ("a", "o", "ix", "on", "ia", "ex", "us", "tec", "ra", "ly", "co", "ro")
PACK_SIZES = (1, 2, 3, 4, 6, 8, 10, 12, 20, 24, 50, 100)
WARRANTY_YEARS = ((0, 1.0), (1, 1.0), (2, 1.06), (3, 1.12), (5, 1.22), (10, 1.4))
GRADES = ("Pro", "Commercial", "Professional", "Heavy Duty")


@dataclass
class Product:
    """One generated product, with what decided its price."""

    category: str
    ptype: ProductType
    brand: str
    tier: str
    specs: dict[str, float] = field(default_factory=dict)
    material: str | None = None
    pack: int = 1
    warranty: int = 0
    grade: str | None = None
    expected_price: float = 0.0


def _brands(rng: random.Random) -> dict[str, dict[str, list[str]]]:
    used: set[str] = set()
    out: dict[str, dict[str, list[str]]] = {}
    for category in CATEGORIES:
        out[category] = {}
        for tier in TIERS:
            names = []
            while len(names) < 3:
                name = (
                    rng.choice(BRAND_SYLLABLES) + rng.choice(BRAND_ENDINGS) + rng.choice(("", "", "Pro", "Tek", "ware"))
                )
                if name not in used:
                    used.add(name)
                    names.append(name)
            out[category][tier] = names
    return out


def expected_price(p: Product) -> float:
    """The noiseless price: the documented function of the attributes (see the module docstring)."""
    price = p.ptype.base * TIERS[p.tier]
    for spec in p.ptype.specs:
        price *= (p.specs[spec.name] / spec.values[0]) ** spec.elasticity
    if p.material is not None:
        price *= dict(p.ptype.materials)[p.material]
    if p.pack > 1:
        price *= p.pack**0.9  # bulk discount: 10 cost 7.9x one
    price *= dict(WARRANTY_YEARS)[p.warranty]
    if p.grade is not None:
        price *= p.ptype.grade_factor
    return price


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:,.0f}"


def _model_code(rng: random.Random) -> str:
    letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(rng.randint(2, 3)))
    return f"{letters}{rng.randint(100, 99999)}{rng.choice(['', 'B', '-K', 'X', '-2'])}"


def _texts(p: Product, rng: random.Random) -> tuple[str, list[str], list[str], dict]:
    """Title, feature bullets, description paragraphs and details, in varied wording."""
    t = p.ptype
    spec_words = [f"{_fmt(p.specs[s.name])} {s.unit}" for s in t.specs]
    adjective = rng.choice(t.adjectives) if t.adjectives else ""
    use = rng.choice(t.uses) if t.uses else ""
    parts = [p.brand]
    if p.grade:
        parts.append(p.grade)
    if spec_words and rng.random() < 0.85:
        parts.append(spec_words[0])
    if adjective and rng.random() < 0.7:
        parts.append(adjective.title() if rng.random() < 0.5 else adjective)
    if p.material and rng.random() < 0.6:
        parts.append(p.material.title())
    parts.append(t.noun)
    if p.pack > 1:
        parts.append(rng.choice([f"({p.pack} Pack)", f"- {p.pack} Count", f", Pack of {p.pack}", f"{p.pack}-Pack"]))
    if use and rng.random() < 0.5:
        parts.append(f"for {use.title() if rng.random() < 0.5 else use}")
    if rng.random() < 0.25:
        parts.append(_model_code(rng))  # a model code in the title, as real listings have
    title = " ".join(parts).replace(" ,", ",")

    features = []
    for spec, words in zip(t.specs, spec_words):
        features.append(
            rng.choice(
                [
                    f"{spec.name.upper()}: {words}",
                    f"{words} {spec.name}",
                    f"Delivers {words} of {spec.name}",
                    f"{spec.name.capitalize()} of {words}",
                ]
            )
        )
    if p.material:
        features.append(
            rng.choice(
                [f"Made of {p.material}", f"Durable {p.material} construction", f"{p.material.capitalize()} build"]
            )
        )
    if p.grade:
        features.append(
            rng.choice(
                [
                    f"{p.grade} grade for daily professional use",
                    f"Built to {p.grade.lower()} standards",
                    "Rated for commercial duty cycles",
                ]
            )
        )
    if p.warranty:
        features.append(
            rng.choice(
                [
                    f"{p.warranty}-year warranty",
                    f"Backed by a {p.warranty} year limited warranty",
                    f"Warranty: {p.warranty} years",
                ]
            )
        )
    if use:
        features.append(rng.choice([f"Ideal for {use}", f"Great for {use}", f"Perfect choice for {use}"]))
    fillers = [
        "Easy to install &amp; use",
        "Satisfaction guaranteed",
        "Ships in frustration-free packaging",
        "Tested for quality and safety",
        "Lightweight and easy to carry",
        "Sleek modern design",
        "Customer support available 24/7",
        "Compatible with most standard setups",
    ]
    features += rng.sample(fillers, rng.randint(0, 3))
    rng.shuffle(features)
    features = features[: rng.randint(1, max(1, len(features)))]

    description = []
    if rng.random() < 0.8:
        sentences = [
            f"The {p.brand} {t.noun.lower()} is {rng.choice(['designed', 'built', 'made'])} for "
            f"{use or 'everyday use'}."
        ]
        if adjective:
            sentences.append(
                f"This {adjective} model {rng.choice(['combines', 'offers', 'brings'])} reliable "
                f"performance with {rng.choice(['a compact footprint', 'thoughtful details', 'easy care'])}."
            )
        if spec_words and rng.random() < 0.6:
            sentences.append(
                f"With {' and '.join(spec_words)}, it handles {rng.choice(['most jobs', 'daily tasks', 'demanding work'])}."
            )
        if rng.random() < 0.3:
            sentences.append("<br>Package includes: 1 x " + t.noun.lower() + ", user manual.")
        if rng.random() < 0.15:
            sentences.append(f"Replaces part number {_model_code(rng)}-{rng.randint(1000, 9999)}.")
        description.append(" ".join(sentences))
    details = {"Brand": p.brand, "Manufacturer": p.brand + rng.choice([" Inc.", " LLC", " Co., Ltd", ""])}
    if rng.random() < 0.6:
        details["Item model number"] = _model_code(rng)
    if p.material:
        details["Material"] = p.material.title()
    if rng.random() < 0.5:
        details["Item Weight"] = f"{rng.uniform(0.1, 40):.1f} pounds"
    if rng.random() < 0.3:
        details["Date First Available"] = (
            f"{rng.choice(['January', 'March', 'June', 'October'])} {rng.randint(1, 28)}, {rng.randint(2015, 2023)}"
        )
    return title, features, description, details


def _product(rng: random.Random, brands) -> Product:
    category = rng.choice(list(CATEGORIES))
    ptype = rng.choice(CATEGORIES[category])
    tier = rng.choices(list(TIERS), weights=(3, 4, 5, 2.5, 1))[0]
    p = Product(category, ptype, rng.choice(brands[category][tier]), tier)
    for spec in ptype.specs:
        p.specs[spec.name] = rng.choice(spec.values)
    if ptype.materials:
        p.material = rng.choice(ptype.materials)[0]
    if ptype.pack:
        p.pack = rng.choices(PACK_SIZES, weights=(6, 4, 3, 4, 3, 2, 3, 3, 2, 2, 1, 1))[0]
    p.warranty = rng.choices([w for w, _ in WARRANTY_YEARS], weights=(5, 4, 2, 1.5, 1, 0.3))[0]
    if rng.random() < 0.12:
        p.grade = rng.choice(GRADES)
    p.expected_price = expected_price(p)
    return p


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))


def _messy_price(rng: random.Random, price: float):
    """Most prices are clean floats; a few are missing, zero, negative, strings or absurd."""
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.06:
        return 0.0
    if roll < 0.065:
        return -round(price, 2)
    if roll < 0.085:
        return rng.choice([f"${price:,.2f}", f"{price:.2f}", f"from ${price:.2f}", "N/A", "Currently unavailable"])
    if roll < 0.09:
        return rng.choice([round(price * 1000, 2), 99999.0, 0.01])
    return round(price, 2)


def _generate(seed: int, n: int) -> list[tuple[dict | str, float | None]]:
    """(raw record, noiseless price) pairs; malformed lines carry no price."""
    rng = random.Random(seed)
    brands = _brands(rng)
    out: list[tuple[dict | str, float | None]] = []
    while len(out) < n:
        p = _product(rng, brands)
        price = p.expected_price * math.exp(rng.gauss(0, NOISE_SIGMA))
        if not 0.5 <= price <= 999.0:  # the catalog covers $0.50 to $999
            continue
        title, features, description, details = _texts(p, rng)
        if rng.random() < 0.01:  # a very short listing
            title, features, description = p.ptype.noun, [], []
        record = {
            "main_category": p.category,
            "title": title,
            "average_rating": round(min(5.0, max(1.0, rng.gauss(4.2, 0.5))), 1),
            "rating_number": int(rng.paretovariate(1.2) * 5),
            "features": features,
            "description": description,
            "price": _messy_price(rng, price),
            "images": [],
            "videos": [],
            "store": p.brand,
            "categories": [p.category, p.ptype.noun + "s"],
            "details": details,
            "parent_asin": _asin(rng),
            "bought_together": None,
        }
        expected = p.expected_price
        out.append((record, expected))
        if rng.random() < 0.015:  # a duplicate listing under another ASIN
            out.append(({**record, "parent_asin": _asin(rng)}, expected))
        if rng.random() < 0.002:  # a line cut short on export
            out.append((json.dumps(record)[: rng.randint(10, 80)], None))
    return out[:n]


def generate_records(seed: int = SEED, n: int = N_RECORDS) -> list[dict | str]:
    """The raw catalog: dicts in the Amazon 2023 schema, plus a few malformed JSON strings."""
    return [record for record, _ in _generate(seed, n)]


def oracle_prices(seed: int = SEED, n: int = N_RECORDS) -> dict[str, float]:
    """parent_asin -> the noiseless expected price: the best any predictor could do."""
    return {r["parent_asin"]: e for r, e in _generate(seed, n) if isinstance(r, dict) and e is not None}


def write_catalog(path: Path = CATALOG_PATH, seed: int = SEED, n: int = N_RECORDS) -> Path:
    """Gzipped JSONL with a fixed header (mtime 0, no file name), so the bytes depend on the seed only."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in generate_records(seed, n)]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(payload)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else CATALOG_PATH
    write_catalog(path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {N_RECORDS} records, seed {SEED})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
