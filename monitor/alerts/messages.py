"""Human wording of alerts, Chinese by default."""

from __future__ import annotations

from monitor.alerts.model import Alert

RULE_NAMES = {
    "zh": {
        "pickup_at_risk": "揽收即将超时",
        "pickup_overdue": "24小时未揽收",
        "stalled": "物流停滞",
        "carrier_exception": "快递异常",
        "returned": "快递退回",
        "delivery_overdue": "超时未送达",
        "lost_suspected": "疑似丢件",
        "intercept_failed": "拦截失败",
    },
    "en": {
        "pickup_at_risk": "pickup at risk",
        "pickup_overdue": "not picked up in 24 h",
        "stalled": "stalled",
        "carrier_exception": "carrier exception",
        "returned": "returned to sender",
        "delivery_overdue": "delivery overdue",
        "lost_suspected": "suspected lost",
        "intercept_failed": "intercept failed",
    },
}
SEVERITY_NAMES = {
    "zh": {"critical": "严重", "warning": "警告", "info": "提示"},
    "en": {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"},
}
LABELS = {
    "zh": {"order": "订单", "shop": "店铺", "at_stake": "赔付风险", "resolved": "已恢复"},
    "en": {"order": "order", "shop": "shop", "at_stake": "at stake", "resolved": "resolved"},
}


def one_line(alert: Alert, language: str = "zh") -> str:
    """Return a one-line summary of an alert for a terminal or a log."""
    lang = language if language in RULE_NAMES else "zh"
    words = LABELS[lang]
    head = words["resolved"] if alert.state == "resolved" else SEVERITY_NAMES[lang].get(alert.severity, alert.severity)
    parts = [
        f"[{head}] {RULE_NAMES[lang].get(alert.rule, alert.rule)}",
        f"{alert.carrier} {alert.tracking_no}",
        f"{words['order']} {alert.order_id}",
    ]
    if alert.shop:
        parts.append(f"{words['shop']} {alert.shop}")
    if alert.compensation_fen is not None:
        parts.append(f"{words['at_stake']} ¥{alert.compensation_fen / 100:.2f}")
    return " · ".join(parts)
