"""The demo district: 峄城区 (370404), five food businesses, a regulator, one month of records.

``load_demo`` writes, through the core service functions only, what a district
would hold after a month of use: the regulator 峄城区市场监督管理局, a sugar
supplier, a beverage maker, a meat-products maker, a dairy and a small
pomegranate-juice workshop (DOMAIN.md), each with its products (CCP plans and
release-test items), suppliers and customers, and 30 days of incoming-material
checks, production lots, CCP readings, release tests, sales and
self-inspections.

It is deterministic: one fixed random seed, and every code is built from a
*day index* (day 1 … day 30), never from a calendar date, so the same
enterprises, logins, lot codes and entry counts come out on every load (lot
``PJ-D12`` is the beverage lot of day 12, whatever the date). Only the dates move:
day 30 is the day before ``today`` (China Standard Time), day 1 is 30 days
before that, and the setup happens the day before day 1. The core is given a
:class:`~foodtrace.clock.SimulatedClock` that is moved forward record by record
to a realistic time of its day, so ``recorded_at`` looks like a real month of
use, and it never goes past the real present.

The month holds, on purpose, what a regulator and a QA manager should find
(:data:`DEMO_LOTS`): CCP deviations (closed later, closed with the reading, and
one left open), gaps in the monitoring, a sale before the release test, a
back-filled reading and corrections. Apart from those, the records are clean:
no material lot is over-consumed and no lot oversold; a warning that was not
planned stops the load.

One property of the core shapes the timing: a CCP reading names a lot that
must already be recorded, and a production lot can be recorded only once it
has ended (its end time and quantity may not be in the future). So the
operators here record the lot when production ends and then enter the
monitoring sheet of the run; each reading keeps its own ``measured_at``.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import Engine, select

from foodtrace.accounts.service import Role, add_user, create_authority, init_platform
from foodtrace.clock import CST, SimulatedClock
from foodtrace.db import read_session, write_session
from foodtrace.errors import RecordError
from foodtrace.records.service import entry_count, record, register_enterprise
from schemas.identifiers import credit_code_check_char
from schemas.records import RecordKind

__all__ = [
    "DEMO_ENTERPRISES",
    "DEMO_LOTS",
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "DemoSummary",
    "load_demo",
]

SEED = 370404
"""The demo's random seed (the district's region code)."""
DAYS = 30
"""Days of records; day ``DAYS`` is the day before the load date."""
DEMO_PASSWORD = "demo-pass-2026"
"""The password of every demo login."""


# ------------------------------------------------------------------ identifiers

_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_GB11714_VALUE = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def _credit_code(prefix: str, org8: str) -> str:
    """A valid unified social credit code from its first 8 characters and an organisation code.

    The organisation code gets its GB 11714 check character, the whole code its
    GB 32100 check character (the DOMAIN.md codes are built the same way).
    """
    total = sum(_GB11714_VALUE[c] * w for c, w in zip(org8, _GB11714_WEIGHTS, strict=True))
    rest = 11 - total % 11
    org9 = org8 + ("X" if rest == 10 else "0" if rest == 11 else str(rest))
    first17 = prefix + org9
    return first17 + credit_code_check_char(first17)


SUGAR = "91370404MA3793PC3E"
JUICE = "91370404MA3F42206T"
MEAT = "91370404MA3CHX9R46"
DAIRY = "91370404MA3Q17GH1G"
WORKSHOP = "91370404MA3B8Q5T6A"
DISTRIBUTOR = "91370404MA3386YX15"
REGULATOR = _credit_code("11370404", "00432107")
"""峄城区市场监督管理局 (registration authority 1, type 1: an organ of government)."""
REGULATOR_NAME = "峄城区市场监督管理局"
REGION = "370404"
DEMO_ENTERPRISES: dict[str, str] = {
    SUGAR: "枣庄甘源糖业有限公司",
    JUICE: "山东榴韵饮品有限公司",
    MEAT: "枣庄鲁味斋食品有限公司",
    DAIRY: "枣庄绿源乳业有限公司",
    WORKSHOP: "峄城区榴乡情石榴汁加工小作坊",
}
"""The registered demo enterprises by credit code (the distributor 91370404MA3386YX15 is
only a customer)."""

DEMO_USERS: list[tuple[str, str, str | None]] = [
    ("admin", Role.PLATFORM_ADMIN.value, None),
    ("regulator", Role.REGULATOR.value, REGULATOR),
    ("sugar-admin", Role.ENTERPRISE_ADMIN.value, SUGAR),
    ("sugar-op", Role.ENTERPRISE_USER.value, SUGAR),
    ("juice-admin", Role.ENTERPRISE_ADMIN.value, JUICE),
    ("juice-op", Role.ENTERPRISE_USER.value, JUICE),
    ("meat-admin", Role.ENTERPRISE_ADMIN.value, MEAT),
    ("meat-op", Role.ENTERPRISE_USER.value, MEAT),
    ("dairy-admin", Role.ENTERPRISE_ADMIN.value, DAIRY),
    ("dairy-op", Role.ENTERPRISE_USER.value, DAIRY),
    ("workshop-admin", Role.ENTERPRISE_ADMIN.value, WORKSHOP),
    ("workshop-op", Role.ENTERPRISE_USER.value, WORKSHOP),
]
"""Every demo login: (username, role, credit code of its enterprise or authority)."""

# The lots that show something; the planner checks that each one is what it says.
_DEVIATION_CLOSED_LATER = "PJ-D12"
_DEVIATION_CLOSED_INLINE = "BF-D09"
_DEVIATION_OPEN = "MK-D24"
_READING_GAP = "MK-D17"
_PARAMETER_MISSING = "BF-D22"
_SOLD_BEFORE_RELEASE = "PJ-D19"
_LATE_READING = "BF-D15"
_SALE_CORRECTED = "MK-D08"
_SHARED_SUGAR = "BT-D01"
_SUGAR_CHECK_CORRECTED = "SUG-D15"
_NITRITE = "NIT-D01"
_TRACE_TARGET = "PJ-D05"
_WORKSHOP_LOT = "WS-D04"

DEMO_LOTS: dict[str, str] = {
    _DEVIATION_CLOSED_LATER: "山东榴韵饮品 石榴汁饮料: CCP1 巴氏杀菌 83.5 °C against ≥85 °C at "
    "about 10:30; the corrective action was recorded that afternoon as its own entry",
    _DEVIATION_CLOSED_INLINE: "枣庄鲁味斋 酱卤牛肉: CCP1 蒸煮 core temperature 73.6 °C against "
    "≥75 °C, corrective action given with the reading",
    _DEVIATION_OPEN: "枣庄绿源乳业 巴氏杀菌乳: CCP3 冷藏 6.8 °C against ≤6 °C and no corrective "
    "action: an open deviation",
    _READING_GAP: "枣庄绿源乳业 巴氏杀菌乳: two pasteurisation readings (temperature and holding "
    "time) missing in the middle of the run, a gap of about 90 min against every 30 min",
    _PARAMETER_MISSING: "枣庄鲁味斋 酱卤牛肉: CCP2 冷却 cooling time never recorded (only the end "
    "temperature)",
    _SOLD_BEFORE_RELEASE: "山东榴韵饮品 石榴汁饮料: 20 箱 sold to 惠佳超市 the morning before its "
    "release test passed (accepted with a warning: a finding)",
    _LATE_READING: "枣庄鲁味斋 酱卤牛肉: one metal-detection reading back-filled 3 days after it "
    "was taken",
    _SALE_CORRECTED: "枣庄绿源乳业 巴氏杀菌乳: the sale to 峄城区实验小学 was entered as 60 箱 and "
    "corrected the next day to 50 箱",
    _SHARED_SUGAR: "枣庄甘源糖业 白砂糖 batch sold to the beverage maker and the workshop; both "
    "recorded it on receipt (cross-enterprise trail, forward to their lots)",
    _SUGAR_CHECK_CORRECTED: "山东榴韵饮品 material lot of white sugar (from BT-D13): the incoming "
    "check named batch BT-D31, digits swapped, and was corrected the next day",
    _NITRITE: "枣庄鲁味斋 sodium nitrite (食品添加剂) lot: used by the 15 beef lots BF-D01 … "
    "BF-D19 (BF-D19 also draws on NIT-D19), a classic trace target",
    _TRACE_TARGET: f"山东榴韵饮品 石榴汁饮料 made with sugar batch {_SHARED_SUGAR}: a failed "
    "sample here traces back to the sugar supplier and forward to the workshop's lots",
    _WORKSHOP_LOT: f"峄城区榴乡情 workshop juice (no GTIN) made with sugar batch {_SHARED_SUGAR}",
}
"""Lot codes worth trying, with what is special about each."""


# ------------------------------------------------------------------ master data

# Each enterprise: its registration, its logins, the people who sign its records.
_ENTERPRISES: dict[str, dict[str, Any]] = {
    SUGAR: {
        "key": "sugar",
        "data": {
            "credit_code": SUGAR,
            "name": DEMO_ENTERPRISES[SUGAR],
            "kind": "manufacturer",
            "licence_no": "SC12137040400025",
            "region_code": REGION,
            "address": "山东省枣庄市峄城区峨山镇工业园甘源路8号",
            "contact": "孙建国 0632-7712301",
            "legal_representative": "孙建国",
        },
        "director": "孙丽华",
        "officer": "陈晓东",
        "operator": "陈刚",
        "lab": "马晓燕",
    },
    JUICE: {
        "key": "juice",
        "data": {
            "credit_code": JUICE,
            "name": DEMO_ENTERPRISES[JUICE],
            "kind": "manufacturer",
            "licence_no": "SC10637040400012",
            "region_code": REGION,
            "address": "山东省枣庄市峄城区经济开发区榴园路18号",
            "contact": "李敏 0632-7785106",
            "legal_representative": "李志强",
        },
        "director": "李敏",
        "officer": "张伟",
        "operator": "高峰",
        "lab": "王芳",
    },
    MEAT: {
        "key": "meat",
        "data": {
            "credit_code": MEAT,
            "name": DEMO_ENTERPRISES[MEAT],
            "kind": "manufacturer",
            "licence_no": "SC10437040400038",
            "region_code": REGION,
            "address": "山东省枣庄市峄城区坛山街道承水路66号",
            "contact": "赵倩 0632-7716620",
            "legal_representative": "赵德明",
        },
        "director": "赵倩",
        "officer": "钱磊",
        "operator": "周强",
        "lab": "吴静",
    },
    DAIRY: {
        "key": "dairy",
        "data": {
            "credit_code": DAIRY,
            "name": DEMO_ENTERPRISES[DAIRY],
            "kind": "manufacturer",
            "licence_no": "SC10537040400041",
            "region_code": REGION,
            "address": "山东省枣庄市峄城区吴林街道牧场路3号",
            "contact": "周红 0632-7738219",
            "legal_representative": "周永胜",
        },
        "director": "周红",
        "officer": "郑凯",
        "operator": "冯涛",
        "lab": "韩雪",
    },
    WORKSHOP: {
        "key": "workshop",
        "data": {
            "credit_code": WORKSHOP,
            "name": DEMO_ENTERPRISES[WORKSHOP],
            "kind": "workshop",
            "workshop_registration_no": "鲁食坊登字370404-0017号",
            "region_code": REGION,
            "address": "山东省枣庄市峄城区榴园镇王府山村12号",
            "contact": "王秀兰 0632-7796618",
            "legal_representative": "王秀兰",
        },
        "director": "王秀兰",
        "officer": "王秀兰",
        "operator": "王建军",
        "lab": "王秀兰",
    },
}


def _party(code: str, name: str, credit: str | None, address: str, contact: str, **kw: Any):
    data = {"code": code, "name": name, "address": address, "contact": contact, **kw}
    if credit:
        data["credit_code"] = credit
    return data


_GANYUAN = _party(
    "S-GANYUAN",
    "枣庄甘源糖业有限公司",
    SUGAR,
    "山东省枣庄市峄城区峨山镇工业园甘源路8号",
    "孙建国 0632-7712301",
    licence_no="SC12137040400025",
)
_HUABAO = _party(
    "S-HUABAO",
    "临沂华宝塑料包装有限公司",
    _credit_code("91371300", "MA3C5R8L"),
    "山东省临沂市兰山区工业大道88号",
    "王军 0539-8061122",
    licence_no="鲁XK16-204-01236",
)

_SUPPLIERS: dict[str, list[dict[str, Any]]] = {
    SUGAR: [
        _party(
            "S-GANHUA",
            "崇左甘华糖业有限公司",
            _credit_code("91451400", "MA5N7K2D"),
            "广西壮族自治区崇左市江州区甘华路1号",
            "黄海 0771-7823310",
            licence_no="SC12145140000231",
        ),
        _HUABAO,
    ],
    JUICE: [
        _GANYUAN,
        _party(
            "S-LINTONG",
            "西安临潼榴源果汁有限公司",
            _credit_code("91610115", "MA6TX4B2"),
            "陕西省西安市临潼区代王街道榴源路6号",
            "段明 029-83812345",
            licence_no="SC10661011500078",
        ),
        _party(
            "S-RUNDE",
            "潍坊润德生化有限公司",
            _credit_code("91370700", "MA3M9E1F"),
            "山东省潍坊市昌乐县经济开发区润德路9号",
            "孙涛 0536-6221180",
            licence_no="SC20137070000156",
        ),
        _party(
            "S-HENGTONG",
            "枣庄恒通塑料制品有限公司",
            _credit_code("91370402", "MA3D2W7P"),
            "山东省枣庄市市中区光明路120号",
            "徐亮 0632-3315566",
            licence_no="鲁XK16-204-00871",
        ),
    ],
    MEAT: [
        _party(
            "S-JINNIU",
            "临沂金牛肉类加工有限公司",
            _credit_code("91371300", "MA3K8B1T"),
            "山东省临沂市河东区汤河镇金牛路16号",
            "刘斌 0539-8306611",
            licence_no="SC10437131200214",
        ),
        _party(
            "S-LUSHENG",
            "淄博鲁盛食品添加剂有限公司",
            _credit_code("91370300", "MA3H6P4K"),
            "山东省淄博市临淄区化工路27号",
            "田野 0533-7158890",
            licence_no="SC20137030000127",
        ),
        _party(
            "S-YANYE",
            "山东省盐业集团枣庄有限公司",
            _credit_code("91370400", "MA3NB6R0"),
            "山东省枣庄市市中区建华路50号",
            "邢军 0632-3061234",
            licence_no="食盐批发许可证 鲁盐批第0402号",
        ),
        _party(
            "S-CHUANXIANG",
            "枣庄川香调味品有限公司",
            _credit_code("91370402", "MA3P1X9C"),
            "山东省枣庄市市中区税郭镇工业园5号",
            "罗川 0632-3590077",
            licence_no="SC10337040200093",
        ),
        _HUABAO,
    ],
    DAIRY: [
        _party(
            "S-LVYE",
            "峄城区绿野奶牛养殖专业合作社",
            _credit_code("93370404", "MA3R2T5N"),
            "山东省枣庄市峄城区吴林街道东村北",
            "郭大勇 0632-7740215",
            licence_no="生鲜乳收购许可证 鲁0404-0012",
        ),
        _party(
            "S-LIKANG",
            "呼和浩特利康包装材料有限公司",
            _credit_code("91150100", "MA0N7A3C"),
            "内蒙古自治区呼和浩特市金川开发区利康路2号",
            "白玉 0471-3356120",
            licence_no="蒙XK16-204-00458",
        ),
    ],
    WORKSHOP: [
        _GANYUAN,
        _party(
            "S-SHILIU",
            "峄城区榴园石榴种植专业合作社",
            _credit_code("93370404", "MA3T4L8E"),
            "山东省枣庄市峄城区榴园镇贾泉村",
            "贾明 0632-7795502",
        ),
        _party(
            "S-MINGHUA",
            "滕州明华玻璃制品有限公司",
            _credit_code("91370481", "MA3E8K2Q"),
            "山东省滕州市经济开发区玻璃路18号",
            "高明 0632-5561808",
            licence_no="鲁XK16-205-00366",
        ),
    ],
}

_HUIMIN = _party(
    "C-HUIMIN",
    "枣庄惠民食品商贸有限公司",
    DISTRIBUTOR,
    "山东省枣庄市峄城区坛山街道商贸城B区12号",
    "钱进 0632-7721188",
)
_HUIJIA = _party(
    "C-HUIJIA",
    "枣庄惠佳超市连锁有限公司峄城店",
    _credit_code("91370404", "MA3G5K7W"),
    "山东省枣庄市峄城区承水中路201号",
    "冯丽 0632-7759900",
)
_JINGQU = _party(
    "C-JINGQU",
    "峄城区冠世榴园景区游客中心商店",
    _credit_code("92370404", "MA3H8N1R"),
    "山东省枣庄市峄城区榴园镇冠世榴园景区游客中心",
    "陈芳 0632-7797123",
)

_CUSTOMERS: dict[str, list[dict[str, Any]]] = {
    SUGAR: [
        _party(
            "C-LIUYUN",
            "山东榴韵饮品有限公司",
            JUICE,
            "山东省枣庄市峄城区经济开发区榴园路18号",
            "李敏 0632-7785106",
        ),
        _party(
            "C-LIUXIANG",
            "峄城区榴乡情石榴汁加工小作坊",
            WORKSHOP,
            "山东省枣庄市峄城区榴园镇王府山村12号",
            "王秀兰 0632-7796618",
        ),
        _party(
            "C-FUMANYUAN",
            "枣庄福满园食品有限公司",
            _credit_code("91370402", "MA3L6C2H"),
            "山东省枣庄市市中区龙头路36号",
            "许静 0632-3128870",
        ),
        _party(
            "C-HUALIAN",
            "枣庄市市中区华联副食品批发部",
            _credit_code("92370402", "MA3M1F5G"),
            "山东省枣庄市市中区批发市场北区3号",
            "蒋华 0632-3211456",
        ),
    ],
    JUICE: [_HUIMIN, _HUIJIA, _JINGQU],
    MEAT: [
        _HUIMIN,
        _HUIJIA,
        _party(
            "C-YIZHOU",
            "枣庄峄州大酒店有限公司",
            _credit_code("91370404", "MA3J2B6X"),
            "山东省枣庄市峄城区坛山路88号",
            "孔亮 0632-7712888",
        ),
    ],
    DAIRY: [
        _HUIMIN,
        _HUIJIA,
        _party(
            "C-SCHOOL",
            "峄城区实验小学",
            _credit_code("12370404", "49312076"),
            "山东省枣庄市峄城区坛山街道育才路1号",
            "总务处 孟老师 0632-7711035",
        ),
    ],
    WORKSHOP: [
        _JINGQU,
        _party(
            "C-NONGJIA",
            "峄城区石榴人家农家乐",
            _credit_code("92370404", "MA3K3D7U"),
            "山东省枣庄市峄城区榴园镇王府山村26号",
            "王大海 0632-7796066",
        ),
    ],
}


def _numeric(code: str, name: str, unit: str, freq: int | None, **limits: str) -> dict[str, Any]:
    p: dict[str, Any] = {"code": code, "name": name, "kind": "numeric", "unit": unit, **limits}
    if freq:
        p["frequency_minutes"] = freq
    return p


def _pass_fail(code: str, name: str, freq: int | None) -> dict[str, Any]:
    p: dict[str, Any] = {"code": code, "name": name, "kind": "pass_fail"}
    if freq:
        p["frequency_minutes"] = freq
    return p


_PRODUCTS: dict[str, dict[str, Any]] = {
    SUGAR: {
        "code": "BSZ-25",
        "name": "白砂糖（一级）",
        "category": "食糖",
        "standard": "GB/T 317",
        "gtin": "6925550000017",
        "specification": "25 kg/袋",
        "unit": "kg",
        "packaging": [{"unit": "袋", "quantity": "25"}],
        "storage": "常温、干燥、通风处，离地离墙存放",
        "ccp_plan": [
            {
                "code": "CCP1",
                "name": "金属检测",
                "parameters": [
                    _pass_fail("fe", "Fe Φ1.0 mm 试块检出剔除", 60),
                    _pass_fail("sus", "SUS Φ1.5 mm 试块检出剔除", 60),
                ],
            }
        ],
        "release_items": [
            {"item": "蔗糖分", "limit": "≥99.6", "unit": "g/100g", "method": "GB/T 317"},
            {"item": "还原糖分", "limit": "≤0.10", "unit": "g/100g", "method": "GB/T 317"},
            {"item": "色值", "limit": "≤150", "unit": "IU", "method": "GB/T 317"},
            {"item": "螨", "limit": "不得检出", "unit": "/250 g", "method": "GB 13104"},
        ],
    },
    JUICE: {
        "code": "SLZ-500",
        "name": "石榴汁饮料",
        "category": "饮料",
        "standard": "GB 7101",
        "gtin": "6921234560013",
        "specification": "500 mL/瓶",
        "unit": "瓶",
        "packaging": [{"unit": "箱", "quantity": "24"}],
        "shelf_life_days": 365,
        "storage": "常温、避光保存，开启后请冷藏并尽快饮用",
        "ccp_plan": [
            {
                "code": "CCP1",
                "name": "巴氏杀菌",
                "parameters": [
                    _numeric("temperature", "杀菌温度", "°C", 30, min="85"),
                    _numeric("holding_time", "保持时间", "s", 30, min="15"),
                ],
            },
            {
                "code": "CCP2",
                "name": "灌装封口",
                "parameters": [_pass_fail("seal", "封口完整性", 60)],
            },
        ],
        "release_items": [
            {
                "item": "菌落总数",
                "limit": "n=5, c=2, m=100, M=10000",
                "unit": "CFU/mL",
                "method": "GB 4789.2",
            },
            {
                "item": "大肠菌群",
                "limit": "n=5, c=2, m=1, M=10",
                "unit": "CFU/mL",
                "method": "GB 4789.3",
            },
            {"item": "霉菌", "limit": "≤20", "unit": "CFU/mL", "method": "GB 4789.15"},
            {"item": "酵母", "limit": "≤20", "unit": "CFU/mL", "method": "GB 4789.15"},
        ],
    },
    MEAT: {
        "code": "JLNR-200",
        "name": "酱卤牛肉",
        "category": "熟肉制品",
        "standard": "GB 2726",
        "gtin": "6927654320015",
        "specification": "200 g/袋",
        "unit": "袋",
        "packaging": [{"unit": "箱", "quantity": "50"}],
        "shelf_life_days": 45,
        "storage": "0–4 °C 冷藏",
        "ccp_plan": [
            {
                "code": "CCP1",
                "name": "蒸煮",
                "parameters": [_numeric("core_temp", "中心温度", "°C", 60, min="75")],
            },
            {
                "code": "CCP2",
                "name": "冷却",
                "parameters": [
                    _numeric("end_temp", "冷却终温", "°C", None, max="10"),
                    _numeric("cooling_time", "冷却时间", "min", None, max="120"),
                ],
            },
            {
                "code": "CCP3",
                "name": "金属检测",
                "parameters": [
                    _pass_fail("fe", "Fe Φ1.5 mm 试块检出剔除", 60),
                    _pass_fail("non_fe", "非铁 Φ2.0 mm 试块检出剔除", 60),
                ],
            },
        ],
        "release_items": [
            {
                "item": "菌落总数",
                "limit": "n=5, c=2, m=10000, M=100000",
                "unit": "CFU/g",
                "method": "GB 4789.2",
            },
            {
                "item": "大肠菌群",
                "limit": "n=5, c=2, m=10, M=1000",
                "unit": "CFU/g",
                "method": "GB 4789.3",
            },
            {
                "item": "亚硝酸盐（以亚硝酸钠计）",
                "limit": "≤30",
                "unit": "mg/kg",
                "method": "GB 5009.33",
            },
        ],
    },
    DAIRY: {
        "code": "BSR-250",
        "name": "巴氏杀菌乳",
        "category": "乳制品",
        "standard": "GB 19645",
        "gtin": "6928888000018",
        "specification": "250 mL/盒",
        "unit": "盒",
        "packaging": [{"unit": "箱", "quantity": "24"}],
        "shelf_life_days": 7,
        "storage": "2–6 °C 冷藏",
        "ccp_plan": [
            {
                "code": "CCP1",
                "name": "原料乳验收",
                "parameters": [_pass_fail("antibiotic", "抗生素残留（阴性为合格）", None)],
            },
            {
                "code": "CCP2",
                "name": "巴氏杀菌",
                "parameters": [
                    _numeric("temperature", "杀菌温度", "°C", 30, min="72"),
                    _numeric("holding_time", "保持时间", "s", 30, min="15"),
                ],
            },
            {
                "code": "CCP3",
                "name": "冷藏",
                "parameters": [_numeric("storage_temp", "冷库温度", "°C", 120, max="6")],
            },
        ],
        "release_items": [
            {
                "item": "菌落总数",
                "limit": "n=5, c=2, m=50000, M=100000",
                "unit": "CFU/mL",
                "method": "GB 4789.2",
            },
            {
                "item": "大肠菌群",
                "limit": "n=5, c=2, m=1, M=5",
                "unit": "CFU/mL",
                "method": "GB 4789.3",
            },
            {"item": "蛋白质", "limit": "≥2.9", "unit": "g/100g", "method": "GB 5009.5"},
        ],
    },
    WORKSHOP: {
        "code": "SGZ-1L",
        "name": "手工石榴汁",
        "category": "饮料（小作坊）",
        "specification": "1 L/瓶",
        "unit": "瓶",
        "shelf_life_days": 3,
        "storage": "0–4 °C 冷藏",
        "ccp_plan": [
            {
                "code": "CCP1",
                "name": "加热杀菌",
                "parameters": [
                    _numeric("temperature", "加热温度", "°C", None, min="85"),
                    _numeric("holding_time", "保温时间", "min", None, min="15"),
                ],
            }
        ],
        "release_items": [
            {
                "item": "感官要求",
                "limit": "具有石榴汁应有的色泽、滋味和气味，无异味，无肉眼可见外来杂质",
            },
            {"item": "可溶性固形物", "limit": "≥10.0", "unit": "%", "method": "GB/T 12143"},
            {"item": "菌落总数", "limit": "≤100", "unit": "CFU/mL", "method": "GB 4789.2"},
        ],
    },
}


# ------------------------------------------------------------------ production lines


@dataclass(frozen=True)
class _Material:
    """A material a line consumes, and how it is bought."""

    key: str  # material lot codes are f"{key}-D{day:02d}" (the day of receipt)
    name: str
    kind: str  # MaterialType value
    spec: str
    unit: str
    per_unit: str  # used per base unit of product
    step: str  # quantities are multiples of this
    reorder: str | None  # delivered when the stock runs short; None: a delivery for each lot
    supplier: str
    shelf_life: str
    age: tuple[int, int] = (10, 40)  # produced this many days before receipt
    arrival: str | None = None  # default: the line's


@dataclass(frozen=True)
class _Sale:
    customer: str
    offset: int  # days after production
    share: tuple[float, float]  # of what is still unsold
    at: str
    fixed: int | None = None  # sale units, instead of a share
    school_days_only: bool = False


@dataclass(frozen=True)
class _Line:
    """One product's production: when, how much, from what, monitored how, sold to whom."""

    ent: str
    prefix: str  # lot codes are f"{prefix}-D{day:02d}"
    works: Callable[[int], bool]  # production days, by day index
    start: str
    minutes: int  # length of the run
    quantity: tuple[int, int, int]  # lo, hi, step, in base units
    arrival: str  # when deliveries arrive
    materials: tuple[_Material, ...]
    values: dict[tuple[str, str], tuple[str, str, int] | None]  # (lo, hi, places); None: pass
    release: tuple[int, str]  # release test: days after production, time
    sales: tuple[_Sale, ...]
    sale_factor: int  # base units in one sale unit
    once_at: dict[tuple[str, str], float] = field(default_factory=dict)  # fraction of the run


_BATCH_TAG = {
    "S-GANHUA": "GH",
    "S-HUABAO": "HB",
    "S-LINTONG": "LY",
    "S-RUNDE": "RD",
    "S-HENGTONG": "HT",
    "S-JINNIU": "JN",
    "S-LUSHENG": "LS",
    "S-YANYE": "YY",
    "S-CHUANXIANG": "CX",
    "S-LVYE": "LV",
    "S-LIKANG": "LK",
    "S-SHILIU": "SL",
    "S-MINGHUA": "MH",
}
"""The prefix of each supplier's batch numbers."""
_CERTIFICATE = {
    "S-JINNIU": "动物检疫合格证明 A37",
    "S-LVYE": "生鲜乳交接单 LV",
    "S-SHILIU": "承诺达标合格证 No.",
}
"""The document checked on receipt, where it is not the supplier's certificate of conformity."""

_SUGAR_SHELF_LIFE = "免除标示（GB 7718 固态食糖类）"


def _sugar(per_unit: str, reorder: str) -> _Material:
    return _Material(
        key="SUG",
        name="白砂糖",
        kind="raw_material",
        spec="一级，25 kg/袋",
        unit="kg",
        per_unit=per_unit,
        step="1",
        reorder=reorder,
        supplier="S-GANYUAN",
        shelf_life=_SUGAR_SHELF_LIFE,
        arrival="08:05",
    )


def _packaging(key: str, name: str, spec: str, reorder: str, supplier: str) -> _Material:
    """One container or bag per base unit of product."""
    return _Material(
        key=key,
        name=name,
        kind="food_related_product",
        spec=spec,
        unit="个",
        per_unit="1",
        step="1",
        reorder=reorder,
        supplier=supplier,
        shelf_life="24个月",
    )


_LINES: tuple[_Line, ...] = (
    _Line(
        ent=SUGAR,
        prefix="BT",
        works=lambda d: d % 3 == 1,
        start="08:00",
        minutes=240,
        quantity=(18000, 22000, 1000),
        arrival="07:40",
        materials=(
            _Material(
                key="YT",
                name="原糖",
                kind="raw_material",
                spec="进口精炼用原糖，吨袋",
                unit="kg",
                per_unit="1.03",
                step="1",
                reorder="64000",
                supplier="S-GANHUA",
                shelf_life="24个月",
                age=(20, 60),
            ),
            _Material(
                key="BZD",
                name="覆膜编织袋（内衬PE）",
                kind="food_related_product",
                spec="25 kg 装",
                unit="个",
                per_unit="0.04",
                step="1",
                reorder="8000",
                supplier="S-HUABAO",
                shelf_life="24个月",
            ),
        ),
        values={("CCP1", "fe"): None, ("CCP1", "sus"): None},
        release=(0, "14:40"),
        sales=(
            _Sale("C-FUMANYUAN", 1, (0.25, 0.3), "09:10"),
            _Sale("C-HUALIAN", 2, (0.45, 0.55), "09:30"),
        ),
        sale_factor=1,
    ),
    _Line(
        ent=JUICE,
        prefix="PJ",
        works=lambda d: d >= 2 and d % 7 != 0,
        start="08:30",
        minutes=270,
        quantity=(5760, 7200, 240),
        arrival="07:40",
        materials=(
            _Material(
                key="NSZ",
                name="石榴浓缩汁",
                kind="raw_material",
                spec="65°Brix，250 kg/桶",
                unit="kg",
                per_unit="0.03",
                step="0.5",
                reorder="2000",
                supplier="S-LINTONG",
                shelf_life="-18 °C 冷冻 24个月",
                age=(30, 90),
            ),
            _sugar(per_unit="0.04", reorder="1500"),
            _Material(
                key="NMS",
                name="柠檬酸",
                kind="food_additive",
                spec="一水柠檬酸，25 kg/袋",
                unit="kg",
                per_unit="0.0015",
                step="0.1",
                reorder="200",
                supplier="S-RUNDE",
                shelf_life="24个月",
            ),
            _Material(
                key="SLS",
                name="山梨酸钾",
                kind="food_additive",
                spec="颗粒，25 kg/桶",
                unit="kg",
                per_unit="0.0002",
                step="0.01",
                reorder="25",
                supplier="S-RUNDE",
                shelf_life="24个月",
            ),
            _packaging("PET", "PET瓶", "500 mL 耐热PET瓶", "60000", "S-HENGTONG"),
            _packaging("CAP", "瓶盖", "38 mm 防盗瓶盖", "60000", "S-HENGTONG"),
        ),
        values={
            ("CCP1", "temperature"): ("85.6", "87.8", 1),
            ("CCP1", "holding_time"): ("15.8", "17.6", 1),
            ("CCP2", "seal"): None,
        },
        release=(1, "14:50"),
        sales=(
            _Sale("C-HUIMIN", 2, (0.45, 0.55), "09:00"),
            _Sale("C-HUIJIA", 3, (0.4, 0.5), "09:40"),
            _Sale("C-JINGQU", 5, (0.2, 0.3), "10:20"),
        ),
        sale_factor=24,
    ),
    _Line(
        ent=MEAT,
        prefix="BF",
        works=lambda d: d % 7 not in (6, 0),
        start="07:30",
        minutes=360,
        quantity=(2400, 2800, 50),
        arrival="07:00",
        materials=(
            _Material(
                key="BEEF",
                name="冷冻牛腱肉",
                kind="raw_material",
                spec="冷冻分割牛腱，20 kg/箱",
                unit="kg",
                per_unit="0.33",
                step="1",
                reorder="2400",
                supplier="S-JINNIU",
                shelf_life="-18 °C 冷冻 12个月",
            ),
            _Material(
                key="NIT",
                name="亚硝酸钠",
                kind="food_additive",
                spec="食品添加剂 亚硝酸钠，500 g/袋",
                unit="kg",
                per_unit="0.00004",
                step="0.001",
                reorder="1.5",
                supplier="S-LUSHENG",
                shelf_life="24个月",
                age=(20, 90),
            ),
            _Material(
                key="SALT",
                name="食用盐",
                kind="raw_material",
                spec="精制食用盐，50 kg/袋",
                unit="kg",
                per_unit="0.008",
                step="0.5",
                reorder="500",
                supplier="S-YANYE",
                shelf_life="免除标示（GB 7718 食用盐）",
                age=(20, 90),
            ),
            _Material(
                key="XXL",
                name="复合香辛料",
                kind="raw_material",
                spec="八角、桂皮、花椒等，10 kg/袋",
                unit="kg",
                per_unit="0.003",
                step="0.1",
                reorder="100",
                supplier="S-CHUANXIANG",
                shelf_life="18个月",
                age=(10, 60),
            ),
            _packaging("BAG", "耐高温真空蒸煮袋", "200 g 规格，PET/AL/CPP", "30000", "S-HUABAO"),
        ),
        values={
            ("CCP1", "core_temp"): ("77.5", "84.0", 1),
            ("CCP2", "end_temp"): ("4.0", "8.5", 1),
            ("CCP2", "cooling_time"): ("92", "115", 0),
            ("CCP3", "fe"): None,
            ("CCP3", "non_fe"): None,
        },
        once_at={("CCP2", "end_temp"): 0.9, ("CCP2", "cooling_time"): 0.9},
        release=(1, "15:20"),
        sales=(
            _Sale("C-HUIMIN", 2, (0.35, 0.45), "08:50"),
            _Sale("C-HUIJIA", 2, (0.35, 0.45), "10:10"),
            _Sale("C-YIZHOU", 3, (0.25, 0.35), "09:30"),
        ),
        sale_factor=50,
    ),
    _Line(
        ent=DAIRY,
        prefix="MK",
        works=lambda d: True,
        start="07:00",
        minutes=240,
        quantity=(5760, 6480, 240),
        arrival="06:10",
        materials=(
            _Material(
                key="RAW",
                name="生乳",
                kind="raw_material",
                spec="荷斯坦牛生乳，冷藏罐车",
                unit="kg",
                per_unit="0.26",
                step="10",
                reorder=None,
                supplier="S-LVYE",
                shelf_life="0–4 °C，48小时内加工",
                age=(0, 0),
            ),
            _packaging("PKG", "屋顶盒包材", "250 mL 纸塑复合屋顶盒", "60000", "S-LIKANG"),
        ),
        values={
            ("CCP1", "antibiotic"): None,
            ("CCP2", "temperature"): ("74.6", "76.4", 1),
            ("CCP2", "holding_time"): ("15.6", "17.0", 1),
            ("CCP3", "storage_temp"): ("2.6", "5.2", 1),
        },
        once_at={("CCP1", "antibiotic"): 0.0},
        release=(0, "15:40"),
        sales=(
            _Sale("C-SCHOOL", 1, (0, 0), "07:10", fixed=50, school_days_only=True),
            _Sale("C-HUIMIN", 1, (0.45, 0.55), "07:40"),
            _Sale("C-HUIJIA", 1, (0.5, 0.6), "08:20"),
        ),
        sale_factor=24,
    ),
    _Line(
        ent=WORKSHOP,
        prefix="WS",
        works=lambda d: d % 2 == 0,
        start="08:30",
        minutes=150,
        quantity=(200, 320, 10),
        arrival="07:30",
        materials=(
            _Material(
                key="SL",
                name="鲜石榴",
                kind="raw_material",
                spec="峄城大红袍石榴，一级果",
                unit="kg",
                per_unit="2.4",
                step="10",
                reorder=None,
                supplier="S-SHILIU",
                shelf_life="常温 15天",
                age=(0, 1),
            ),
            _sugar(per_unit="0.05", reorder="100"),
            _packaging("GLS", "玻璃瓶（含盖）", "1 L 玻璃瓶", "1500", "S-MINGHUA"),
        ),
        values={
            ("CCP1", "temperature"): ("86.0", "89.5", 1),
            ("CCP1", "holding_time"): ("15", "18", 0),
        },
        once_at={("CCP1", "temperature"): 0.5, ("CCP1", "holding_time"): 0.6},
        release=(0, "13:20"),
        sales=(
            _Sale("C-JINGQU", 0, (0.55, 0.65), "15:30"),
            _Sale("C-NONGJIA", 1, (0.6, 0.75), "10:00"),
        ),
        sale_factor=1,
    ),
)

_DAILY_ITEMS = (
    "从业人员健康证明与个人卫生",
    "原料、食品添加剂进货查验",
    "生产车间环境与设备清洗消毒",
    "关键控制点监控与记录",
    "出厂检验与产品留样",
    "虫害控制设施",
    "不合格品与废弃物处置",
)
_DAILY_PROBLEMS = (
    ("虫害控制设施", "包装间灭蝇灯一支灯管损坏", "当日更换灯管，复查正常"),
    (
        "从业人员健康证明与个人卫生",
        "一名员工健康证明将于7日内到期",
        "已安排体检，到期前调离直接入口食品岗位",
    ),
    ("生产车间环境与设备清洗消毒", "车间地漏有积水", "已清理并消毒地漏，增加巡查频次"),
    ("不合格品与废弃物处置", "废弃物暂存桶未加盖", "已加盖并标识，班组长每日检查"),
)
_WEEKLY_ITEMS = (
    "日管控发现问题整改落实情况",
    "供应商资质及进货查验记录",
    "关键控制点监控及纠偏记录",
    "出厂检验记录与留样",
    "生产过程追溯记录完整性",
    "食品安全风险隐患排查",
)
_MONTHLY_ITEMS = (
    "本月日管控、周排查情况总结",
    "食品安全风险防控清单动态调整",
    "出厂检验及监督抽检结果分析",
    "下月食品安全重点工作安排",
)


# ------------------------------------------------------------------ the plan


@dataclass
class _Op:
    """One record to append, at a simulated instant."""

    at: datetime
    order: int
    ent: str
    kind: RecordKind
    data: dict[str, Any] | Callable[[dict[str, int]], dict[str, Any]]
    actor: str
    ref: str | None = None
    expect: tuple[str, ...] = ()


@dataclass
class _Held:
    """A lot in stock: a received material lot, or a sugar lot at the supplier."""

    code: str
    left: Decimal
    day: int = 0
    released_at: datetime | None = None


def _fmt(value: Decimal) -> str:
    """A quantity as a plain decimal string: 2000, 0.125 (never 2E+3)."""
    return format(value.normalize(), "f")


class _Planner:
    """Builds the month as a list of timed records; nothing touches the database here."""

    def __init__(self, today: date) -> None:
        self.today = today
        self.rng = random.Random(SEED)
        # Events whose days depend on the calendar (month ends) draw from their own stream, so
        # that every other value is the same whatever the load date.
        self.calendar_rng = random.Random(SEED + 1)
        self.ops: list[_Op] = []
        self.stock: dict[tuple[str, str], list[_Held]] = defaultdict(list)
        self.sugar: list[_Held] = []
        self.sugar_sales: dict[str, set[str]] = defaultdict(set)
        self.lot_sugar: dict[str, set[str]] = defaultdict(set)
        self.batch_of: dict[tuple[str, str], str] = {}
        self.used_by: dict[str, set[str]] = defaultdict(set)
        self.counters: Counter[str] = Counter()
        self.lots: set[str] = set()

    # -- time
    def day(self, d: int) -> date:
        return self.today - timedelta(days=DAYS + 1 - d)

    def at(
        self, d: int, hhmm: str, jitter_min: int = 0, rng: random.Random | None = None
    ) -> datetime:
        """Day ``d`` at ``hhmm`` China Standard Time, plus up to ``jitter_min`` minutes."""
        h, m = (int(x) for x in hhmm.split(":"))
        base = datetime(*self.day(d).timetuple()[:3], h, m, tzinfo=CST)
        if not jitter_min:
            return base
        return base + timedelta(seconds=(rng or self.rng).randint(0, jitter_min * 60))

    def later(self, t: datetime, lo_s: int, hi_s: int) -> datetime:
        return t + timedelta(seconds=self.rng.randint(lo_s, hi_s))

    # -- ops
    def add(
        self,
        at: datetime,
        ent: str,
        kind: RecordKind,
        data: dict[str, Any] | Callable[[dict[str, int]], dict[str, Any]],
        actor: str,
        *,
        ref: str | None = None,
        expect: tuple[str, ...] = (),
    ) -> None:
        self.ops.append(_Op(at, len(self.ops), ent, kind, data, actor, ref, expect))

    @staticmethod
    def admin(ent: str) -> str:
        return f"{_ENTERPRISES[ent]['key']}-admin"

    @staticmethod
    def op(ent: str) -> str:
        return f"{_ENTERPRISES[ent]['key']}-op"

    def dec(self, lo: str, hi: str, places: int) -> str:
        """A value from lo to hi with ``places`` decimals, as the instrument shows it."""
        scale = 10**places
        n = self.rng.randint(int(Decimal(lo) * scale), int(Decimal(hi) * scale))
        return f"{Decimal(n) / scale:.{places}f}"

    # -- the whole month
    def build(self) -> list[_Op]:
        self.master_data()
        for d in range(0, DAYS + 1):
            if d:
                for line in _LINES:
                    if line.works(d):
                        self.produce(line, d)
                self.self_inspections(d)
            self.monthly_report(d)
        self.check_specials()
        return sorted(self.ops, key=lambda o: (o.at, o.order))

    def master_data(self) -> None:
        for i, (ent, product) in enumerate(_PRODUCTS.items()):
            t = self.at(0, "14:00") + timedelta(minutes=20 * i)
            self.add(t, ent, RecordKind.PRODUCT, product, self.admin(ent))
            for party in _SUPPLIERS[ent]:
                t = self.later(t, 60, 180)
                self.add(t, ent, RecordKind.SUPPLIER, party, self.admin(ent))
            for party in _CUSTOMERS[ent]:
                t = self.later(t, 60, 180)
                self.add(t, ent, RecordKind.CUSTOMER, party, self.admin(ent))

    # -- materials
    def consume(self, line: _Line, mat: _Material, d: int, need: Decimal) -> list[dict[str, str]]:
        """Take ``need`` from the stock, oldest lot first, buying more that morning if short."""
        held = self.stock[(line.ent, mat.key)]
        if mat.reorder is None:
            self.receive(line, mat, d, need)
        elif sum((h.left for h in held), Decimal(0)) < need:
            self.receive(line, mat, d, Decimal(mat.reorder))
        uses = []
        for h in held:
            if need <= 0:
                break
            take = min(h.left, need)
            if take > 0:
                h.left -= take
                need -= take
                uses.append({"material_lot": h.code, "quantity": _fmt(take), "unit": mat.unit})
        assert need == 0, (line.ent, mat.key, d)
        return uses

    def receive(self, line: _Line, mat: _Material, d: int, qty: Decimal) -> None:
        """A delivery and its incoming-material check (Art. 50)."""
        ent = line.ent
        code = f"{mat.key}-D{d:02d}"
        arrival = self.at(d, mat.arrival or line.arrival, 15)
        staff = _ENTERPRISES[ent]
        if mat.supplier == "S-GANYUAN":
            data, sugar_batch = self.buy_sugar(ent, code, d, qty, arrival)
        else:
            tag = _BATCH_TAG[mat.supplier]
            made = self.day(d) - timedelta(days=self.rng.randint(*mat.age))
            supplier = next(s for s in _SUPPLIERS[ent] if s["code"] == mat.supplier)
            data = {
                "material_lot": code,
                "material_name": mat.name,
                "material_type": mat.kind,
                "specification": mat.spec,
                "quantity": _fmt(qty),
                "unit": mat.unit,
                "batch_no": f"{tag}{self.rng.randint(1000, 9999)}",
                "production_date": made.isoformat(),
                "shelf_life": mat.shelf_life,
                "receipt_date": self.day(d).isoformat(),
                "supplier_code": mat.supplier,
                "certificate_no": _CERTIFICATE.get(mat.supplier, f"{tag}-HG-")
                + str(self.rng.randint(100000, 999999)),
                "accepted": True,
                "inspector": staff["lab"],
            }
            if supplier.get("licence_no"):
                data["supplier_licence_checked"] = True
                data["supplier_licence_no"] = supplier["licence_no"]
            else:
                data["supplier_licence_checked"] = False
                data["notes"] = "食用农产品，查验承诺达标合格证"
            sugar_batch = None
        data["event_time"] = arrival.isoformat()
        recorded = self.later(arrival, 300, 900)
        self.stock[(ent, mat.key)].append(_Held(code, qty, d))
        if sugar_batch is None or code != _SUGAR_CHECK_CORRECTED:
            self.add(recorded, ent, RecordKind.MATERIAL_CHECK, data, self.op(ent))
            return
        # The check entered with the batch number's digits swapped, corrected next morning.
        wrong = {**data, "batch_no": "BT-D" + sugar_batch[-2:][::-1]}
        assert wrong["batch_no"] not in {h.code for h in self.sugar}
        self.add(recorded, ent, RecordKind.MATERIAL_CHECK, wrong, self.op(ent), ref="sugar_typo")
        fixed = {k: v for k, v in data.items() if k != "event_time"}
        self.add(
            self.at(d + 1, "09:10", 10),
            ent,
            RecordKind.CORRECTION,
            lambda refs: {
                "corrects": refs["sugar_typo"],
                "reason": f"批号录入错误（数字颠倒）：供方送货单及合格证批号为 {sugar_batch}，"
                f"误录为 {wrong['batch_no']}；与供方销售记录核对后更正",
                "record": fixed,
            },
            self.admin(ent),
        )

    def buy_sugar(
        self, ent: str, code: str, d: int, qty: Decimal, arrival: datetime
    ) -> tuple[dict[str, Any], str]:
        """A delivery of sugar: the supplier's sale, and the buyer's incoming check of it."""
        dispatch = arrival - timedelta(minutes=self.rng.randint(35, 55))
        lot = next(
            h
            for h in reversed(self.sugar)
            if h.released_at is not None and h.released_at < dispatch and h.left >= qty
        )
        lot.left -= qty
        self.sugar_sales[lot.code].add(ent)
        self.batch_of[(ent, code)] = lot.code
        customer = {JUICE: "C-LIUYUN", WORKSHOP: "C-LIUXIANG"}[ent]
        self.counters["sugar-sale"] += 1
        self.add(
            self.later(dispatch, 120, 600),
            SUGAR,
            RecordKind.SALE,
            {
                "lot_code": lot.code,
                "quantity": _fmt(qty),
                "unit": "kg",
                "sale_date": self.day(d).isoformat(),
                "customer_code": customer,
                "document_no": f"GY-XS-{self.counters['sugar-sale']:04d}",
                "event_time": dispatch.isoformat(),
            },
            self.op(SUGAR),
        )
        data = {
            "material_lot": code,
            "material_name": "白砂糖",
            "material_type": "raw_material",
            "specification": "一级，25 kg/袋",
            "quantity": _fmt(qty),
            "unit": "kg",
            "batch_no": lot.code,
            "production_date": self.day(lot.day).isoformat(),
            "shelf_life": _SUGAR_SHELF_LIFE,
            "receipt_date": self.day(d).isoformat(),
            "supplier_code": "S-GANYUAN",
            "supplier_licence_checked": True,
            "supplier_licence_no": "SC12137040400025",
            "certificate_no": f"JY-{lot.code}",
            "accepted": True,
            "inspector": _ENTERPRISES[ent]["lab"],
        }
        return data, lot.code

    # -- a production lot and everything that follows from it
    def produce(self, line: _Line, d: int) -> None:
        ent = line.ent
        code = f"{line.prefix}-D{d:02d}"
        self.lots.add(code)
        lo, hi, every = line.quantity
        qty = Decimal(self.rng.randrange(lo, hi + 1, every))
        materials: list[dict[str, str]] = []
        for mat in line.materials:
            step = Decimal(mat.step)
            need = (qty * Decimal(mat.per_unit) / step).to_integral_value(ROUND_CEILING) * step
            uses = self.consume(line, mat, d, need)
            for u in uses:
                self.used_by[u["material_lot"]].add(code)
            if mat.supplier == "S-GANYUAN":
                self.lot_sugar[code] |= {self.batch_of[(ent, u["material_lot"])] for u in uses}
            materials += uses
        start = self.at(d, line.start, 8)
        end = start + timedelta(minutes=line.minutes + self.rng.randint(0, 15))
        lot = {
            "product_code": _PRODUCTS[ent]["code"],
            "lot_code": code,
            "production_date": self.day(d).isoformat(),
            "started_at": start.isoformat(),
            "ended_at": end.isoformat(),
            "quantity": _fmt(qty),
            "unit": _PRODUCTS[ent]["unit"],
            "materials": materials,
        }
        if code == _DEVIATION_CLOSED_LATER:
            lot["notes"] = "约10:30杀菌温度偏低，该时段产品已隔离并重新杀菌"
        # Recorded when the run has ended (its end time and quantity cannot be in the future),
        # then the run's monitoring sheet.
        t = self.later(end, 240, 600)
        self.add(t, ent, RecordKind.PRODUCTION_LOT, lot, self.op(ent))
        self.readings(line, code, d, start, end, t)
        if ent == SUGAR:
            self.sugar.append(_Held(code, qty, d))
        self.release(line, code, d, qty)

    def schedule(self, start: datetime, end: datetime, freq: int) -> list[datetime]:
        """Reading times that leave no interval of ``freq`` minutes in the run without one."""
        step = timedelta(minutes=freq - 1)
        t = start + timedelta(minutes=1)
        out: list[datetime] = []
        while True:
            m = self.later(t, 0, 45)
            if m > end - timedelta(minutes=1):
                break
            out.append(m)
            t += step
        if not out or end - out[-1] >= step:
            out.append(end - timedelta(minutes=2))
        return out

    def readings(
        self, line: _Line, code: str, d: int, start: datetime, end: datetime, t: datetime
    ) -> None:
        """The run's CCP monitoring sheet, entered reading by reading right after the lot."""
        ent = line.ent
        staff = _ENTERPRISES[ent]
        sheet: list[tuple[datetime, str, str, int]] = []
        for point in _PRODUCTS[ent]["ccp_plan"]:
            shared: dict[int, list[datetime]] = {}
            for param in point["parameters"]:
                freq = param.get("frequency_minutes")
                if freq is None:
                    frac = line.once_at[(point["code"], param["code"])]
                    when = start + (end - start) * frac + timedelta(minutes=3 if frac == 0 else -5)
                    times = [self.later(when, 0, 60)]
                else:
                    if freq not in shared:
                        shared[freq] = self.schedule(start, end, freq)
                    times = shared[freq]
                sheet += [(m, point["code"], param["code"], i) for i, m in enumerate(times)]
        sheet.sort()
        for measured, ccp, param, i in sheet:
            spec = line.values[(ccp, param)]
            data: dict[str, Any] = {
                "lot_code": code,
                "ccp": ccp,
                "parameter": param,
                "measured_at": measured.isoformat(),
                "operator": staff["operator"],
            }
            if spec is None:
                data["result"] = "pass"
            else:
                unit = next(
                    p["unit"]
                    for pt in _PRODUCTS[ent]["ccp_plan"]
                    for p in pt["parameters"]
                    if pt["code"] == ccp and p["code"] == param
                )
                data["value"] = self.dec(*spec)
                data["unit"] = unit
            recorded = t = self.later(t, 10, 40)
            ref = None
            expect: tuple[str, ...] = ()
            if code == _DEVIATION_CLOSED_LATER and (ccp, param, i) == ("CCP1", "temperature", 4):
                data["value"] = "83.5"
                ref, expect = "deviation", ("open_deviation",)
            elif code == _DEVIATION_CLOSED_INLINE and (ccp, param, i) == ("CCP1", "core_temp", 1):
                data["value"] = "73.6"
                data["corrective_action"] = (
                    "该锅延长蒸煮15分钟，复测中心温度79.2 °C；该锅产品单独标识，检验合格后放行"
                )
            elif code == _DEVIATION_OPEN and (ccp, param, i) == ("CCP3", "storage_temp", 1):
                data["value"] = "6.8"
                expect = ("open_deviation",)
            elif code == _READING_GAP and ccp == "CCP2" and i in (3, 4):
                continue  # the recorder's paper ran out: no readings for an hour
            elif code == _PARAMETER_MISSING and (ccp, param) == ("CCP2", "cooling_time"):
                continue
            elif code == _LATE_READING and (ccp, param, i) == ("CCP3", "fe", 3):
                recorded = self.at(d + 3, "09:20", 10)  # the sheet turned up three days later
            self.add(
                recorded, ent, RecordKind.CCP_RECORD, data, self.op(ent), ref=ref, expect=expect
            )
            if ref == "deviation":
                taken = measured + timedelta(minutes=12)
                self.add(
                    self.at(d, "15:20", 15),
                    ent,
                    RecordKind.CORRECTIVE_ACTION,
                    lambda refs, taken=taken: {  # type: ignore[misc]  # a default: no inference
                        "reading_seq": refs["deviation"],
                        "action": "隔离该时段产品，重新杀菌，调整蒸汽阀，复测 86.2 °C",
                        "taken_at": taken.isoformat(),
                        "operator": staff["director"],
                    },
                    self.admin(ent),
                )

    def release(self, line: _Line, code: str, d: int, qty: Decimal) -> None:
        """The release test (Art. 51), all items passing, then the lot's sales."""
        ent = line.ent
        rd = d + line.release[0]
        if rd > DAYS:
            return  # tested after the demo's last day
        tested = self.at(rd, line.release[1], 40)
        data = {
            "lot_code": code,
            "tested_at": tested.isoformat(),
            "items": self.results(ent),
            "conclusion": "pass",
            "inspector": _ENTERPRISES[ent]["lab"],
            "report_no": f"JY-{code}",
        }
        self.add(self.later(tested, 300, 1500), ent, RecordKind.RELEASE_TEST, data, self.op(ent))
        if ent == SUGAR:
            self.sugar[-1].released_at = tested + timedelta(minutes=30)
        self.sell(line, code, d, qty)

    def results(self, ent: str) -> list[dict[str, Any]]:
        items = []
        for spec in _PRODUCTS[ent]["release_items"]:
            name, limit = spec["item"], spec["limit"]
            item: dict[str, Any] = {"item": name, "limit": limit, "passed": True}
            if spec.get("unit"):
                item["unit"] = spec["unit"]
            if limit.startswith("n=5"):
                m = int(limit.split("m=")[1].split(",")[0])
                top = {100: 60, 1: 0, 50000: 12000, 10000: 6000, 10: 0}[m]
                unit = 10 if top < 1000 else 100
                results = [str(self.rng.randint(0, top // unit) * unit) for _ in range(5)]
                item["sampling"] = {
                    "n": 5,
                    "c": 2,
                    "m": str(m),
                    "M": limit.split("M=")[1],
                    "results": results,
                }
                item["result"] = max(results, key=int)
            else:
                item["result"] = {
                    "蔗糖分": lambda: self.dec("99.65", "99.85", 2),
                    "还原糖分": lambda: self.dec("0.03", "0.08", 2),
                    "色值": lambda: self.dec("60", "130", 0),
                    "螨": lambda: "未检出",
                    "霉菌": lambda: "<10",
                    "酵母": lambda: "<10",
                    "亚硝酸盐（以亚硝酸钠计）": lambda: self.dec("3.5", "12.0", 1),
                    "蛋白质": lambda: self.dec("3.05", "3.25", 2),
                    "感官要求": lambda: "符合",
                    "可溶性固形物": lambda: self.dec("10.8", "12.5", 1),
                    "菌落总数": lambda: self.dec("10", "60", 0),
                }[name]()
            items.append(item)
        return items

    def sell(self, line: _Line, code: str, d: int, qty: Decimal) -> None:
        ent = line.ent
        left = int(qty) // line.sale_factor  # in sale units
        if ent == SUGAR:
            left = int(self.sugar[-1].left)
        if code == _SOLD_BEFORE_RELEASE:
            # An urgent order shipped the morning before the release test came back.
            self.add_sale(ent, code, d + 1, "09:20", "C-HUIJIA", 20, ("unreleased_sale",))
            left -= 20
        for sale in line.sales:
            sd = d + sale.offset
            if sd > DAYS or (sale.school_days_only and sd % 7 in (6, 0)):
                continue
            if sale.fixed is not None:
                n = sale.fixed
            else:
                share = self.rng.uniform(*sale.share)
                n = int((Decimal(left) * Decimal(str(round(share, 3)))).to_integral(ROUND_FLOOR))
                if ent == SUGAR:
                    n -= n % 25  # whole bags
            if n <= 0 or n > left:
                continue
            left -= n
            if ent == SUGAR:
                self.sugar[-1].left -= n
            self.add_sale(ent, code, sd, sale.at, sale.customer, n)

    def add_sale(
        self,
        ent: str,
        code: str,
        sd: int,
        hhmm: str,
        customer: str,
        n: int,
        expect: tuple[str, ...] = (),
    ) -> None:
        self.counters[f"sale-{ent}"] += 1
        key = _ENTERPRISES[ent]["key"][:2].upper()
        data = {
            "lot_code": code,
            "quantity": str(n),
            "unit": {SUGAR: "kg", WORKSHOP: "瓶"}.get(ent, "箱"),
            "sale_date": self.day(sd).isoformat(),
            "customer_code": customer,
            "document_no": f"{key}-XS-{self.counters[f'sale-{ent}']:04d}",
        }
        at = self.at(sd, hhmm, 20)
        if code == _SALE_CORRECTED and customer == "C-SCHOOL":
            wrong = {**data, "quantity": str(n + 10)}
            self.add(at, ent, RecordKind.SALE, wrong, self.op(ent), ref="sale_typo")
            self.add(
                self.at(sd + 1, "09:40", 10),
                ent,
                RecordKind.CORRECTION,
                lambda refs: {
                    "corrects": refs["sale_typo"],
                    "reason": f"送货单核对：学校实收 {n} 箱，录入时误填为 {n + 10} 箱",
                    "record": data,
                },
                self.admin(ent),
            )
            return
        self.add(at, ent, RecordKind.SALE, data, self.op(ent), expect=expect)

    # -- self-inspections (SAMR Order 60: 日管控、周排查、月调度)
    def self_inspections(self, d: int) -> None:
        for line in _LINES:
            ent = line.ent
            staff = _ENTERPRISES[ent]
            works = line.works(d) or (ent == SUGAR and d % 7 != 0)
            if works:
                items = [{"item": i, "result": "ok"} for i in _DAILY_ITEMS]
                data: dict[str, Any] = {
                    "period": "daily",
                    "period_date": self.day(d).isoformat(),
                    "items": items,
                    "inspector": staff["officer"],
                }
                if self.rng.random() < 0.06:
                    item, problem, fix = self.rng.choice(_DAILY_PROBLEMS)
                    items[_DAILY_ITEMS.index(item)] = {
                        "item": item,
                        "result": "problem",
                        "note": problem,
                    }
                    data["problems"] = problem
                    data["rectification"] = fix
                self.add(
                    self.at(d, "16:50", 40), ent, RecordKind.SELF_INSPECTION, data, self.op(ent)
                )
            if d % 7 == 5:
                monday = self.day(d) - timedelta(days=self.day(d).weekday())
                self.add(
                    self.at(d, "17:35", 20),
                    ent,
                    RecordKind.SELF_INSPECTION,
                    {
                        "period": "weekly",
                        "period_date": monday.isoformat(),
                        "items": [{"item": i, "result": "ok"} for i in _WEEKLY_ITEMS],
                        "inspector": staff["director"],
                    },
                    self.admin(ent),
                )

    def monthly_report(self, d: int) -> None:
        """月调度 on the last day of each month (the setup day included): one or two a load."""
        if (self.day(d) + timedelta(days=1)).day != 1:
            return
        for ent, staff in _ENTERPRISES.items():
            self.add(
                self.at(d, "17:50", 5, self.calendar_rng),
                ent,
                RecordKind.SELF_INSPECTION,
                {
                    "period": "monthly",
                    "period_date": self.day(d).replace(day=1).isoformat(),
                    "items": [{"item": i, "result": "ok"} for i in _MONTHLY_ITEMS],
                    "inspector": staff["director"],
                },
                self.admin(ent),
            )

    def check_specials(self) -> None:
        """Each lot named in DEMO_LOTS is what its description says (the plan is deterministic)."""
        for code in DEMO_LOTS:
            assert code in self.lots or any(
                h.code == code for held in self.stock.values() for h in held
            ), code
        assert self.sugar_sales[_SHARED_SUGAR] == {JUICE, WORKSHOP}, self.sugar_sales
        assert self.lot_sugar[_TRACE_TARGET] == {_SHARED_SUGAR}, self.lot_sugar[_TRACE_TARGET]
        assert self.lot_sugar[_WORKSHOP_LOT] == {_SHARED_SUGAR}, self.lot_sugar[_WORKSHOP_LOT]
        nitrite = sorted(self.used_by[_NITRITE])
        assert (len(nitrite), nitrite[0], nitrite[-1]) == (15, "BF-D01", "BF-D19"), nitrite
        assert self.batch_of[(JUICE, _SUGAR_CHECK_CORRECTED)] == "BT-D13"
        assert any(o.ref == "sugar_typo" for o in self.ops)
        assert any(o.ref == "sale_typo" for o in self.ops)


# ------------------------------------------------------------------ loading


@dataclass
class DemoSummary:
    """What :func:`load_demo` wrote, and how to look at it."""

    today: date
    first_day: date
    last_day: date
    password: str
    users: list[tuple[str, str, str | None, str]]  # username, role, credit code, display name
    ledgers: list[tuple[str, str, int]]  # credit code, name, entries
    lots: dict[str, str]
    warnings: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def entries(self) -> int:
        return sum(n for _, _, n in self.ledgers)

    def describe(self) -> str:
        names = {code: name for code, name, _ in self.ledgers}
        names[REGULATOR] = REGULATOR_NAME
        lines = [
            f"Demo district 峄城区 ({REGION}): {len(self.ledgers)} enterprises, "
            f"{self.first_day} … {self.last_day} ({DAYS} days), {self.entries} ledger entries, "
            f"loaded in {self.seconds:.1f} s.",
            "",
            f"Logins (password for all: {self.password}):",
        ]
        width = max(len(u) for u, *_ in self.users)
        for username, role, code, display in self.users:
            where = f"{names.get(code, '')} ({code})" if code else "the platform"
            lines.append(f"  {username:<{width}}  {role:<16}  {where}  — {display}")
        lines += ["", "Ledgers:"]
        for code, name, n in self.ledgers:
            lines.append(f"  {code}  {n:>5} entries  {name}")
        lines += ["", "Lot codes to try:"]
        width = max(len(c) for c in self.lots)
        for code, what in self.lots.items():
            lines.append(f"  {code:<{width}}  {what}")
        if self.warnings:
            found = ", ".join(f"{k} ×{v}" for k, v in sorted(self.warnings.items()))
            lines += ["", f"Warnings the core gave while loading (all planned): {found}"]
        return "\n".join(lines)


def _display_name(username: str, role: str, code: str | None) -> str:
    if role == Role.PLATFORM_ADMIN:
        return "平台管理员"
    if role == Role.REGULATOR:
        return f"{REGULATOR_NAME} 食品生产监管科 刘洋"
    staff = _ENTERPRISES[code or ""]
    if role == Role.ENTERPRISE_ADMIN:
        title = "经营者" if staff["data"]["kind"] == "workshop" else "食品安全总监"
        return f"{staff['director']}（{title}）"
    return f"{staff['operator']}（操作员）"


def _already_loaded(engine: Engine) -> bool:
    from foodtrace.accounts.models import User
    from foodtrace.ledger.models import Ledger

    usernames = [u for u, _, _ in DEMO_USERS]
    with read_session(engine) as session:
        users = session.execute(select(User.id).where(User.username.in_(usernames))).first()
        ledgers = session.execute(
            select(Ledger.id).where(Ledger.credit_code.in_(list(_ENTERPRISES)))
        ).first()
    return users is not None or ledgers is not None


def load_demo(
    *, engine: Engine, echo: Callable[[str], None] = lambda s: None, today: date | None = None
) -> DemoSummary:
    """Write the demo district into an (empty) database; see the module docstring.

    ``today`` (default: today in China Standard Time) is the day after the
    last day of records; it may not lie in the future.
    """
    from foodtrace.config import Settings
    from foodtrace.ledger.service import get_ledger

    began = time.monotonic()
    real_today = datetime.now(UTC).astimezone(CST).date()
    today = today or real_today
    if today > real_today:
        raise ValueError(f"today ({today}) is in the future: demo records may not be")
    if _already_loaded(engine):
        raise RuntimeError("the database already holds demo users or enterprises")

    planner = _Planner(today)
    ops = planner.build()
    clock = SimulatedClock(planner.at(0, "08:30"))
    with write_session(engine) as session:
        init_platform(session=session, name=Settings().platform_name, now=clock.now())

    # The day before day 1: the platform admin sets up the regulator and the enterprises.
    echo(f"demo: setting up {REGULATOR_NAME} and {len(_ENTERPRISES)} enterprises")
    clock.set(planner.at(0, "09:00"))
    with write_session(engine) as session:
        create_authority(
            session=session,
            credit_code=REGULATOR,
            name=REGULATOR_NAME,
            region_codes=[REGION],
            now=clock.now(),
        )
    ledger_ids: dict[str, int] = {}
    users: list[tuple[str, str, str | None, str]] = []
    for username, role, code in DEMO_USERS:
        if code in _ENTERPRISES and code not in ledger_ids:
            clock.advance(timedelta(minutes=6, seconds=planner.rng.randint(0, 240)))
            with write_session(engine) as session:
                register_enterprise(
                    session=session, data=_ENTERPRISES[code]["data"], actor="admin", clock=clock
                )
                ledger = get_ledger(session=session, credit_code=code)
                assert ledger.id is not None
                ledger_ids[code] = ledger.id
        clock.advance(timedelta(minutes=1, seconds=planner.rng.randint(0, 90)))
        display = _display_name(username, role, code)
        with write_session(engine) as session:
            add_user(
                session=session,
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                now=clock.now(),
                display_name=display,
                enterprise_credit_code=code if code in _ENTERPRISES else None,
                authority_credit_code=code if code == REGULATOR else None,
            )
        users.append((username, role, code, display))

    echo(
        f"demo: {len(ops)} records over {DAYS} days, "
        f"{planner.day(1)} … {planner.day(DAYS)} (simulated clock, China Standard Time)"
    )
    refs: dict[str, int] = {}
    warnings: Counter[str] = Counter()
    next_report = 5
    for n, op in enumerate(ops, 1):
        if op.at < clock.now():
            raise RuntimeError(f"demo clock would go backwards at {op.at}")
        clock.set(op.at)
        data = op.data(refs) if callable(op.data) else op.data
        try:
            with write_session(engine) as session:
                done = record(
                    session=session,
                    ledger_id=ledger_ids[op.ent],
                    kind=op.kind,
                    data=data,
                    actor=op.actor,
                    clock=clock,
                )
        except RecordError as exc:
            raise RuntimeError(
                f"demo data refused ({op.kind} of {op.ent} at {op.at}): {exc}"
            ) from exc
        if op.ref:
            refs[op.ref] = done.seq
        for w in done.warnings:
            if w.type not in op.expect:
                raise RuntimeError(f"demo data: unplanned warning on {op.kind} {data}: {w.msg}")
            warnings[w.type] += 1
        day = (op.at.astimezone(CST).date() - planner.day(0)).days
        if day >= next_report:
            echo(f"demo: day {day}/{DAYS} ({n} of {len(ops)} records)")
            next_report = day + 5

    with read_session(engine) as session:
        ledgers = [
            (code, _ENTERPRISES[code]["data"]["name"], entry_count(session, ledger_ids[code]))
            for code in _ENTERPRISES
        ]
    summary = DemoSummary(
        today=today,
        first_day=planner.day(1),
        last_day=planner.day(DAYS),
        password=DEMO_PASSWORD,
        users=users,
        ledgers=ledgers,
        lots=dict(DEMO_LOTS),
        warnings=dict(warnings),
        seconds=time.monotonic() - began,
    )
    echo(f"demo: done, {summary.entries} entries in {summary.seconds:.1f} s")
    return summary
