"""Human wording of alerts, Chinese by default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
        "slow_for_route": "慢于线路常态",
        "pickup_rate_forecast": "揽收率预计不达标",
        "carrier_unavailable": "快递接口不可用",
        "ticket_overdue": "工单超时",
        "ticket_escalated": "工单超时升级",
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
        "slow_for_route": "slower than its route",
        "pickup_rate_forecast": "pickup rate forecast below target",
        "carrier_unavailable": "carrier API unavailable",
        "ticket_overdue": "ticket overdue",
        "ticket_escalated": "ticket escalated",
    },
}
ACTION_NAMES = {
    "zh": {"ticket": "已建工单", "reshipment_suggestion": "建议补发", "intercept": "已发起拦截"},
    "en": {
        "ticket": "ticket opened",
        "reshipment_suggestion": "reshipment suggested",
        "intercept": "intercept requested",
    },
}
SEVERITY_NAMES = {
    "zh": {"critical": "严重", "warning": "警告", "info": "提示"},
    "en": {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"},
}
LABELS = {
    "zh": {
        "order": "订单",
        "shop": "店铺",
        "at_stake": "赔付风险",
        "resolved": "已恢复",
        "digest": "物流异常汇总",
        "more": "另有 {n} 条",
        "waited": "已 {h} 小时无进展",
        "usual": "此线路通常 {usual} 小时内有新轨迹，已 {h} 小时（{n} 件样本）",
    },
    "en": {
        "order": "order",
        "shop": "shop",
        "at_stake": "at stake",
        "resolved": "resolved",
        "digest": "Parcel alerts",
        "more": "{n} more",
        "waited": "{h} h without progress",
        "usual": "this route usually scans again within {usual} h, {h} h now ({n} samples)",
    },
}


def one_line(alert: Alert, language: str = "zh") -> str:
    """Return a one-line summary of an alert for a terminal or a log."""
    lang = language if language in RULE_NAMES else "zh"
    words = LABELS[lang]
    head = words["resolved"] if alert.state == "resolved" else SEVERITY_NAMES[lang].get(alert.severity, alert.severity)
    parts = [f"[{head}] {RULE_NAMES[lang].get(alert.rule, alert.rule)}", f"{alert.carrier} {alert.tracking_no}".strip()]
    if alert.order_id:  # a carrier-wide alert (carrier_unavailable) is about no order
        parts.append(f"{words['order']} {alert.order_id}")
    if alert.detail and not alert.tracking_no:
        parts.append(alert.detail)
    if alert.shop:
        parts.append(f"{words['shop']} {alert.shop}")
    if alert.waiting_since is not None and alert.state != "resolved":
        hours = int((alert.opened_at - alert.waiting_since).total_seconds() // 3600)
        if alert.usual_seconds is not None:  # slow_for_route says why: the route's own pace
            usual = f"{alert.usual_seconds / 3600:.{0 if alert.usual_seconds >= 3600 else 1}f}"
            parts.append(words["usual"].format(usual=usual, h=hours, n=alert.usual_samples))
        elif hours > 0:
            parts.append(words["waited"].format(h=hours))
    if alert.compensation_fen is not None:
        parts.append(f"{words['at_stake']} ¥{alert.compensation_fen / 100:.2f}")
    done = [ACTION_NAMES[lang][a] for a in alert.actions if a in ACTION_NAMES[lang]]
    if done and alert.state != "resolved":
        parts.append("、".join(done) if lang == "zh" else ", ".join(done))
    return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered notification: a title, Markdown for channels that render it, plain text."""

    title: str
    markdown: str
    text: str


DIGEST_TOP = 10


def render(alerts: Sequence[Alert], language: str = "zh", link_base: str = "") -> Message:
    """Render one alert, or a burst of them as one digest with counts and the costliest first.

    Never includes buyer contact details: alerts carry none.
    """
    lang = language if language in RULE_NAMES else "zh"
    words = LABELS[lang]
    ordered = sorted(alerts, key=lambda a: (-(a.compensation_fen or 0), a.opened_at, a.anomaly_id))
    counts: dict[str, int] = {}
    for a in alerts:
        counts[a.rule] = counts.get(a.rule, 0) + 1
    if len(alerts) == 1:
        title = one_line(alerts[0], lang).split(" · ")[0]
    else:
        total = ("、" if lang == "zh" else ", ").join(f"{RULE_NAMES[lang].get(r, r)} {n}" for r, n in counts.items())
        title = f"{words['digest']} ({len(alerts)}): {total}"
    stake = sum(a.compensation_fen or 0 for a in alerts)
    lines_md = [f"### {title}"]
    lines_txt = [title]
    if stake:
        lines_md.append(f"**{words['at_stake']}: ¥{stake / 100:.2f}**")
        lines_txt.append(f"{words['at_stake']}: ¥{stake / 100:.2f}")
    for a in ordered[:DIGEST_TOP]:
        line = one_line(a, lang)
        parcel = a.tracking_no and link_base  # a shop- or carrier-wide alert is about no parcel
        link = f"{link_base.rstrip('/')}/api/v1/parcels/{a.carrier}/{a.tracking_no}" if parcel else ""
        lines_md.append(f"- [{line}]({link})" if link else f"- {line}")
        lines_txt.append(f"- {line}" + (f" {link}" if link else ""))
    if len(ordered) > DIGEST_TOP:
        more = len(ordered) - DIGEST_TOP
        lines_md.append(f"- … {words['more'].format(n=more)}")
        lines_txt.append(f"- … {words['more'].format(n=more)}")
    return Message(title=title, markdown="\n".join(lines_md), text="\n".join(lines_txt))
