"""Resident ID numbers and names for synthetic people."""

from __future__ import annotations

import numpy as np

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = np.array(list("10X98765432"))


def check_chars(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check characters for an array of 17-digit strings."""
    if len(first17) == 0:
        return np.array([], dtype="<U1")
    digits = np.frombuffer(np.asarray(first17).astype("S17").tobytes(), dtype=np.uint8).reshape(-1, 17) - 48
    return CHECK_CHARS[(digits.astype(np.int64) @ ID_WEIGHTS) % 11]


def _draw_ids(rng: np.random.Generator, regions: np.ndarray, births: np.ndarray, male: np.ndarray) -> np.ndarray:
    seq = rng.integers(0, 500, size=len(regions)) * 2 + np.where(male, 1, 0)
    first17 = np.char.add(np.char.add(regions.astype("<U6"), births), np.char.zfill(seq.astype(str), 3))
    return np.char.add(first17, check_chars(first17))


def make_ids(
    rng: np.random.Generator, regions: np.ndarray, birth: np.ndarray, male: np.ndarray, taken: np.ndarray | None = None
) -> np.ndarray:
    """Unique valid 18-digit IDs (region code, birth date, sequence odd for men, check
    digit), none of them in `taken`."""
    births = np.char.replace(np.datetime_as_string(birth.astype("datetime64[D]"), unit="D"), "-", "")
    ids = _draw_ids(rng, regions, births, male)
    taken = np.asarray(taken if taken is not None else [], dtype="<U18")
    while True:
        combined = np.concatenate([taken, ids])
        _, first_index = np.unique(combined, return_index=True)
        is_first = np.zeros(len(combined), dtype=bool)
        is_first[first_index] = True
        clash = ~is_first[len(taken):]
        if not clash.any():
            return ids
        ids[clash] = _draw_ids(rng, regions[clash], births[clash], male[clash])


def to_legacy15(id18: np.ndarray) -> np.ndarray:
    """The 15-digit form of an 18-digit ID (drop the century and the check digit)."""
    id18 = np.asarray(id18, dtype="<U18")
    return np.char.add(np.strings.slice(id18, 0, 6), np.strings.slice(id18, 8, 17))


# The most common surnames with their approximate shares (per mille of the population).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
SURNAME_WEIGHTS = np.array(
    [72, 72, 70, 55, 45, 31, 23, 23, 21, 20, 18, 15, 14, 13, 12, 11, 11, 10, 10, 10]
    + [8] * 20
    + [5] * 20
    + [3] * (len(SURNAMES) - 60),
    dtype=float,
)
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华霞平刚桂兰玉萍红飞鹏辉建国志斌宇浩凯鑫瑞晨欣怡佳琪雪梅海燕波峰亮"
    "林春玲丹成文博俊宁鹏晓东建新云龙福生荣贵珍凤兵宏翠莲秋菊永利德海金花淑琴丽娟振兴学锋慧颖婷雯"
)
# Minority names are written with a middle dot between the person's and the father's name.
MINORITY_GIVEN = ["阿依古丽", "买买提", "热依拉", "艾力", "古丽娜尔", "努尔", "阿不都", "帕提古丽", "吐尔逊", "迪丽努尔"]
MINORITY_FATHER = ["买买提", "艾山", "吐尔洪", "阿不力孜", "肉孜", "玉苏甫", "依明", "阿西木"]


def make_names(rng: np.random.Generator, n: int, minority_share: float = 0.01) -> np.ndarray:
    """Common Chinese names: many people share a name, as in real registers."""
    surnames = np.array(list(SURNAMES))[rng.choice(len(SURNAMES), size=n, p=SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum())]
    chars = np.array(list(GIVEN_CHARS))
    weights = 1.0 / np.arange(1, len(chars) + 1) ** 0.7  # a few characters are very common
    weights /= weights.sum()
    first = chars[rng.choice(len(chars), size=n, p=weights)]
    second = chars[rng.choice(len(chars), size=n, p=weights)]
    two_chars = rng.random(n) < 0.7
    names = np.where(two_chars, np.char.add(np.char.add(surnames, first), second), np.char.add(surnames, first))
    minority = rng.random(n) < minority_share
    if minority.any():
        k = int(minority.sum())
        given = np.array(MINORITY_GIVEN)[rng.integers(0, len(MINORITY_GIVEN), k)]
        father = np.array(MINORITY_FATHER)[rng.integers(0, len(MINORITY_FATHER), k)]
        names = names.astype("<U16")
        names[minority] = np.char.add(np.char.add(given, "·"), father)
    return names.astype("<U16")
