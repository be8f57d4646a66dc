"""Every string the console shows, in Chinese (the default) and English: one place to translate.

Templates call ``t("key")``; a key missing here shows itself, so a forgotten string is seen
on the page rather than hidden.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh", "en")
DEFAULT = "zh"

STRINGS: dict[str, tuple[str, str]] = {
    "app": ("包裹监控", "Parcel monitor"),
    "queue": ("工作台", "Work queue"),
    "parcel": ("包裹", "Parcels"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "login_name": ("登录名", "Login"),
    "password": ("密码", "Password"),
    "login_failed": ("登录名或密码不正确。", "Wrong login or password."),
    "locked": (
        "失败次数过多, 请 {minutes} 分钟后再试。",
        "Too many failed attempts: try again in {minutes} minutes.",
    ),
    "forbidden": ("您的角色 ({role}) 不能执行此操作。", "Your role ({role}) may not do this."),
    "csrf": ("页面已过期或请求无效, 请刷新后重试。", "The page expired or the request was forged: reload and retry."),
    "mine": ("我的工单", "My tickets"),
    "unassigned": ("待分配", "Unassigned"),
    "all_active": ("全部待处理", "All active"),
    "rule": ("规则", "Rule"),
    "severity": ("级别", "Severity"),
    "shop": ("店铺", "Shop"),
    "carrier": ("快递公司", "Carrier"),
    "assignee": ("处理人", "Assignee"),
    "overdue": ("已超时", "Overdue"),
    "filter": ("筛选", "Filter"),
    "clear": ("清除", "Clear"),
    "title": ("标题", "Title"),
    "tracking_no": ("运单号", "Tracking no."),
    "order_id": ("订单号", "Order id"),
    "stake": ("涉及金额", "At stake"),
    "age": ("已开", "Age"),
    "sla": ("时限", "SLA"),
    "state": ("状态", "State"),
    "left": ("剩 {span}", "{span} left"),
    "late": ("超时 {span}", "overdue by {span}"),
    "no_sla": ("无时限", "no SLA"),
    "assign_to": ("分配给", "Assign to"),
    "assign": ("分配", "Assign"),
    "close": ("关闭", "Close"),
    "outcome": ("处理结果", "Outcome"),
    "note": ("备注", "Note"),
    "select_all": ("全选", "Select all"),
    "none_found": ("没有工单。", "No tickets."),
    "changed": ("已更新 {n} 个工单。", "{n} tickets changed."),
    "new_rows": ("有新的工单", "New tickets"),
    "counts": ("各规则待处理异常", "Active anomalies per rule"),
    "search": ("搜索", "Search"),
    "search_hint": ("运单号或订单号", "Tracking number or order id"),
    "no_parcel": ("没有找到包裹。", "No parcel found."),
    "timeline": ("物流轨迹", "Carrier timeline"),
    "time": ("时间", "Time"),
    "our_status": ("状态", "Our status"),
    "carrier_code": ("快递状态码", "Carrier code"),
    "carrier_text": ("快递描述", "Carrier text"),
    "location": ("地点", "Location"),
    "anomalies": ("异常", "Anomalies"),
    "intercepts": ("拦截", "Intercepts"),
    "refund": ("退款单", "Refund"),
    "tickets": ("工单", "Tickets"),
    "history": ("记录", "History"),
    "acknowledge": ("确认", "Acknowledge"),
    "resolve": ("解决", "Resolve"),
    "opened": ("发现时间", "Opened"),
    "deadline": ("截止", "Deadline"),
    "new_carrier": ("新快递公司", "New carrier"),
    "new_tracking_no": ("新运单号", "New tracking no."),
    "reship_one": (
        "补发需要新运单号, 请在包裹页逐个处理",
        "a reshipment needs its tracking number: one at a time, on the parcel page",
    ),
    "reship": ("标记已补发", "Mark reshipped"),
    "done": ("完成", "Done"),
    "status": ("包裹状态", "Parcel status"),
    "shipped_at": ("发货时间", "Shipped"),
    "who": ("操作人", "By"),
    "from_to": ("变更", "Change"),
    "nothing": ("无", "None"),
    "refused": ("操作被拒绝: {why}", "Refused: {why}"),
    "saved": ("已保存。", "Saved."),
    "language": ("English", "中文"),
    "role": ("角色", "Role"),
    "users": ("用户", "Users"),
    "display_name": ("姓名", "Name"),
    "mobile": ("手机", "Mobile"),
    "enabled": ("启用", "Enabled"),
    "disable": ("停用", "Disable"),
    "enable": ("启用", "Enable"),
    "change_role": ("改角色", "Change role"),
    "api_tokens": ("可用令牌", "Working tokens"),
    "not_yourself": ("不能停用自己的账号", "you cannot disable your own account"),
    "error": ("出错了", "Something went wrong"),
}


def translator(lang: str) -> Callable[..., str]:
    """Return ``t(key, **values)`` for ``lang`` (unknown languages get the default)."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str, **values: object) -> str:
        pair = STRINGS.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t
