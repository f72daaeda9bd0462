"""What the customer portal says about an appeal, in plain words and both languages.

Every text is an (en, zh-CN) pair; templates pick one with `tr(*pair)`. Nothing here decides
anything: the statuses, their order and what they allow are core/status.py's; this module only
words them for a customer, who never sees a status code.
"""

from __future__ import annotations

from typing import Any, Final

from core.db.case_tables import AppealEvent, ChecklistState, DocumentState
from core.notifications.rendering import document_label, format_money
from core.status import AppealStatus

S = AppealStatus
Text = tuple[str, str]

# The status as a headline: where the appeal stands now.
STATUS_WORDS: Final[dict[AppealStatus, Text]] = {
    S.SUBMITTED: (
        "Received: we are checking that the account can be appealed",
        "已收到：正在核实该账户能否申诉",
    ),
    S.INELIGIBLE: ("Not accepted: this account cannot be appealed yet", "未受理：该账户暂时不能申诉"),
    S.AWAITING_DOCUMENTS: ("Waiting for your documents", "等待您上传材料"),
    S.EXPIRED: ("Closed: the documents did not arrive in time", "已关闭：未在期限内收到材料"),
    S.CHECKING: ("Checking your documents and repayment record", "正在审核您的材料和还款记录"),
    S.AUTO_APPROVED: ("Approved", "已批准"),
    S.AUTO_DECLINED: ("Declined by our automatic checks", "自动审核未通过"),
    S.PENDING_REVIEW: ("Waiting for a reviewer", "等待审核人员处理"),
    S.IN_REVIEW: ("A reviewer is looking at your appeal", "审核人员正在处理您的申诉"),
    S.INFO_REQUESTED: ("The reviewer needs more information", "审核人员需要补充材料"),
    S.PENDING_SECOND_REVIEW: ("Waiting for a second reviewer to confirm", "等待第二位审核人员复核"),
    S.IN_SECOND_REVIEW: ("A second reviewer is confirming the decision", "第二位审核人员正在复核"),
    S.APPROVED: ("Approved", "已批准"),
    S.PARTIALLY_APPROVED: ("Approved in part", "部分批准"),
    S.DECLINED: ("Declined", "未获批准"),
    S.LIMIT_APPLIED: ("Your new limit is in place", "新额度已生效"),
    S.LIMIT_APPLY_FAILED: (
        "Approved; putting the new limit in place is taking longer, our team is on it",
        "已批准；新额度生效需要更长时间，我们正在处理",
    ),
    S.CLOSED: ("Closed", "已结束"),
    S.WITHDRAWN: ("Withdrawn by you", "您已撤回"),
}

# What happens next, in the customer's terms (dates and amounts are added by the page).
NEXT_STEP: Final[dict[AppealStatus, Text]] = {
    S.SUBMITTED: (
        "We check your account and tell you which documents we need. This takes a moment.",
        "我们会核实您的账户，并告诉您需要哪些材料，请稍候。",
    ),
    S.AWAITING_DOCUMENTS: (
        "Upload each document listed below. We check every file as it arrives; once all are "
        "accepted, we assess your appeal.",
        "请上传下列每一项材料。每个文件到达后我们都会检查；全部通过后，我们将评估您的申诉。",
    ),
    S.CHECKING: (
        "We are assessing your appeal. You will see the result here and get a notice.",
        "我们正在评估您的申诉。结果会显示在此页面，并另行通知您。",
    ),
    S.PENDING_REVIEW: (
        "A reviewer will look at your appeal. They may ask you for more documents.",
        "审核人员将处理您的申诉，可能会请您补充材料。",
    ),
    S.IN_REVIEW: (
        "The reviewer decides, or asks you for more documents.",
        "审核人员将作出决定，或请您补充材料。",
    ),
    S.INFO_REQUESTED: (
        "The documents the reviewer asked for will be listed below for you to upload.",
        "审核人员要求的材料将列在下方，供您上传。",
    ),
    S.PENDING_SECOND_REVIEW: (
        "A senior reviewer confirms the decision; nothing is needed from you.",
        "资深审核人员将复核该决定，您无需操作。",
    ),
    S.IN_SECOND_REVIEW: (
        "A senior reviewer confirms the decision; nothing is needed from you.",
        "资深审核人员将复核该决定，您无需操作。",
    ),
    S.AUTO_APPROVED: ("We are putting your new limit in place.", "我们正在为您调整额度。"),
    S.APPROVED: ("We are putting your new limit in place.", "我们正在为您调整额度。"),
    S.PARTIALLY_APPROVED: ("We are putting your new limit in place.", "我们正在为您调整额度。"),
    S.LIMIT_APPLIED: ("The appeal closes in a moment.", "申诉即将结束。"),
    S.LIMIT_APPLY_FAILED: (
        "Our team puts the limit in place by hand; you do not need to do anything.",
        "我们的团队将手动为您调整额度，您无需操作。",
    ),
    S.DECLINED: ("The appeal closes in a moment.", "申诉即将结束。"),
    S.AUTO_DECLINED: (
        "If you think the automatic decision is wrong, you can ask for a person to review it.",
        "如果您认为自动审核的结果有误，可以申请人工复核。",
    ),
}
NOTHING_MORE: Final[Text] = ("Nothing more happens to this appeal.", "此申诉已结束，不会再有后续处理。")

CHECKLIST_STATE: Final[dict[str, Text]] = {
    ChecklistState.MISSING: ("Not received yet", "尚未收到"),
    ChecklistState.RECEIVED: ("Received, waiting to be checked", "已收到，等待检查"),
    ChecklistState.VERIFYING: ("Being checked", "正在检查"),
    ChecklistState.ACCEPTED: ("Accepted", "已通过"),
    ChecklistState.REJECTED: ("Refused", "未通过"),
}

DOCUMENT_STATE: Final[dict[str, Text]] = {
    DocumentState.AWAITING_UPLOAD: ("Upload not finished", "上传未完成"),
    DocumentState.UPLOADED: ("Received, waiting to be checked", "已收到，等待检查"),
    DocumentState.VERIFYING: ("Being checked", "正在检查"),
    DocumentState.ACCEPTED: ("Accepted", "已通过"),
    DocumentState.REJECTED: ("Refused", "未通过"),
}

# Why a checklist item is asked for (core/policy/requirements.py RequirementReason, and a
# reviewer's request).
CHECKLIST_REASON: Final[dict[str, Text]] = {
    "always": ("Needed for every appeal.", "每个申诉都需要。"),
    "requested_limit_above_threshold": (
        "Needed because of the limit you asked for.",
        "因您申请的额度较高而需要。",
    ),
    "no_declared_income": (
        "Needed because we have no income on file for you.",
        "因我们没有您的收入信息而需要。",
    ),
    "worst_dpd_12m_above_threshold": (
        "Needed because a bill in the last 12 months was paid very late.",
        "因近12个月内有账单严重逾期而需要。",
    ),
    "requested_by_reviewer": ("The reviewer asked for it.", "审核人员要求补充。"),
}


def doc_label(code: str) -> Text:
    return document_label(code, "en"), document_label(code, "zh-CN")


def status_words(status: AppealStatus, decided_limit_minor: int | None, requested_limit_minor: int) -> Text:
    """The headline for a status. A closed appeal says how it ended: approved (with the new
    limit) if a limit was decided, declined otherwise (the only ways to CLOSED)."""
    if status is S.CLOSED:
        if decided_limit_minor is None:
            return "Closed: declined", "已结束：未获批准"
        amount = format_money(decided_limit_minor)
        if decided_limit_minor < requested_limit_minor:
            return f"Closed: approved in part, new limit {amount}", f"已结束：部分批准，新额度 {amount}"
        return f"Closed: approved, new limit {amount}", f"已结束：已批准，新额度 {amount}"
    return STATUS_WORDS[status]


def _labels(codes: Any) -> Text:
    codes = [str(code) for code in codes or ()]
    return (
        ", ".join(document_label(code, "en") for code in codes),
        "、".join(document_label(code, "zh-CN") for code in codes),
    )


def event_words(event: AppealEvent) -> Text | None:
    """What happened, as the customer reads it; None for the staff's own bookkeeping (task
    created, released, reassigned, SLA warnings), which says nothing to a customer."""
    details = event.details or {}
    if event.kind == "submitted":
        amount = format_money(int(details.get("requested_limit_minor", 0)))
        return (
            f"You submitted the appeal, asking for a limit of {amount}.",
            f"您提交了申诉，申请额度 {amount}。",
        )
    if event.kind != "status_changed" or event.to_status is None:
        return None
    to, before = AppealStatus(event.to_status), event.from_status
    if to is S.AWAITING_DOCUMENTS:
        if details.get("requested"):
            en, zh = _labels(details["requested"])
            return f"The reviewer asked you for: {en}.", f"审核人员请您补充：{zh}。"
        en, zh = _labels(details.get("required"))
        return f"We asked you for documents: {en}.", f"我们请您提供材料：{zh}。"
    if to is S.PENDING_REVIEW:
        if before == S.AUTO_DECLINED:
            return (
                "You asked for a person to review the automatic decision.",
                "您申请了对自动审核结果的人工复核。",
            )
        if before == S.IN_REVIEW:
            return "Your appeal is waiting for a reviewer again.", "您的申诉重新等待审核人员处理。"
        return "Your appeal went to a reviewer.", "您的申诉已转交审核人员。"
    if to is S.LIMIT_APPLIED and "new_limit_minor" in details:
        amount = format_money(int(details["new_limit_minor"]))
        return f"Your new limit of {amount} was put in place.", f"您的新额度 {amount} 已生效。"
    return _EVENT_WORDS.get(to)


_EVENT_WORDS: Final[dict[AppealStatus, Text]] = {
    S.INELIGIBLE: ("We could not accept the appeal.", "我们无法受理该申诉。"),
    S.EXPIRED: (
        "The document deadline passed, so the appeal was closed.",
        "提交材料的期限已过，申诉已关闭。",
    ),
    S.CHECKING: ("All documents were accepted; the assessment started.", "所有材料均已通过，开始评估。"),
    S.AUTO_APPROVED: ("Our automatic checks approved the appeal.", "自动审核批准了您的申诉。"),
    S.AUTO_DECLINED: ("Our automatic checks declined the appeal.", "自动审核未批准您的申诉。"),
    S.IN_REVIEW: ("A reviewer started on your appeal.", "审核人员开始处理您的申诉。"),
    S.INFO_REQUESTED: ("The reviewer asked for more information.", "审核人员要求补充信息。"),
    S.PENDING_SECOND_REVIEW: (
        "The reviewer made a decision; a second reviewer will confirm it.",
        "审核人员已作出决定，将由第二位审核人员复核。",
    ),
    S.IN_SECOND_REVIEW: ("A second reviewer started confirming the decision.", "第二位审核人员开始复核。"),
    S.APPROVED: ("A reviewer approved the appeal.", "审核人员批准了您的申诉。"),
    S.PARTIALLY_APPROVED: ("A reviewer approved the appeal in part.", "审核人员部分批准了您的申诉。"),
    S.DECLINED: ("A reviewer declined the appeal.", "审核人员未批准您的申诉。"),
    S.LIMIT_APPLIED: ("Your new limit was put in place.", "您的新额度已生效。"),
    S.LIMIT_APPLY_FAILED: (
        "Putting the new limit in place did not work yet; our team is on it.",
        "新额度暂未生效，我们的团队正在处理。",
    ),
    S.CLOSED: ("The appeal was closed.", "申诉已结束。"),
    S.WITHDRAWN: ("You withdrew the appeal.", "您撤回了申诉。"),
}

ACCOUNT_STATUS: Final[dict[str, Text]] = {
    "ACTIVE": ("Active", "正常"),
    "FROZEN": ("Frozen", "已冻结"),
    "REDUCED": ("Reduced", "已降额"),
    "CLOSED": ("Closed", "已关闭"),
}

# Refusals of an upload, by problem code, in the customer's words ({mib}: the size limit).
# Codes not listed here show the error's own text.
UPLOAD_REFUSALS: Final[dict[str, Text]] = {
    "document_too_large": ("The file is larger than the {mib} MiB limit.", "文件超过 {mib} MiB 的上限。"),
    "unsupported_document_type": (
        "This kind of file is not accepted; upload a PDF, PNG, JPEG or CSV file.",
        "不支持此类文件，请上传 PDF、PNG、JPEG 或 CSV 文件。",
    ),
    "unknown_document_type": ("Choose what the document is from the list.", "请从列表中选择材料类型。"),
    "not_collecting_documents": (
        "This appeal is not collecting documents any more.",
        "此申诉目前不再收取材料。",
    ),
    "validation_failed": ("Choose a file to upload.", "请选择要上传的文件。"),
    "one_file_per_request": ("Send one file at a time.", "请一次上传一个文件。"),
    "upload_interrupted": (
        "The upload was interrupted; nothing was stored. Please try again.",
        "上传中断，未保存任何内容，请重试。",
    ),
    "document_store_unavailable": (
        "We could not store the file just now; nothing was stored. Please try again.",
        "暂时无法保存文件，未保存任何内容，请重试。",
    ),
}
