"""The attacks of the privacy audit (`membership.ALL_ATTACKS`) in words, in their order: the
findings' statistics and the dashboard's label dictionary both name them from here. Imports
nothing, so the dashboard's words load without the attacks' code."""

ATTACK_NAMES: dict[str, str] = {
    "online": "online LiRA",
    "offline": "offline LiRA",
    "global": "global threshold",
    "rmia": "online RMIA",
    "rmia_offline": "offline RMIA",
}
