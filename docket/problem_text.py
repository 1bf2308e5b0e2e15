"""What each problem ``code`` says to people, in every language Docket ships.

The ``code`` of a problem never changes with the language; its ``title`` and ``detail`` do. A
raised error's English ``detail`` is often built from values (``"No job 42."``); in another
language the detail is the exact translation of that English text when the catalog has one, else
this table's general explanation of the code. A new problem code needs a line here (and its
translation in docket/translations/): tests/test_i18n.py fails on a code used in the source that
is missing from this table or untranslated.
"""
from __future__ import annotations

from docket import i18n
from docket.i18n import N_

#: code -> (title, what it means in general). Titles as the API has always sent them in English.
PROBLEMS: dict[str, tuple[str, str]] = {
    # Uploads and documents
    "empty_file": (N_("Empty file"), N_("The uploaded file is empty.")),
    "missing_file": (N_("Bad request"), N_("Send the document as the multipart field 'file'.")),
    "missing_rule": (N_("Missing rule"), N_("Name the policy to apply in the field 'rule'.")),
    "unsupported_content_type": (N_("Unsupported media type"),
                                 N_("This request body's content type is not accepted here.")),
    "unsupported_type": (N_("Unsupported media type"),
                         N_("The file is not a type Docket reads (JPEG, PNG, WebP, TIFF, BMP, GIF, PDF, OFD, "
                            "CII/UBL XML).")),
    "file_too_large": (N_("File too large"), N_("The file is larger than this deployment accepts.")),
    "batch_too_large": (N_("Batch too large"), N_("The batch has more files than this deployment accepts.")),
    "invalid_batch": (N_("Invalid batch"), N_("No file of the batch could be accepted; each file's problem is listed.")),
    "note_too_long": (N_("Note too long"), N_("The batch note is too long.")),
    "corrupt_document": (N_("Corrupt document"), N_("The document is damaged or not what its type says; it cannot be read.")),
    "invalid_document": (N_("Unusable document"), N_("The document cannot be used.")),
    "image_too_large": (N_("Image too large"), N_("The image has more pixels than this deployment accepts.")),
    "too_many_pages": (N_("Too many pages"), N_("The document has more pages than this deployment accepts.")),
    "encrypted_pdf": (N_("Encrypted PDF"), N_("The PDF is encrypted or password-protected; send an unprotected copy.")),
    # Policies
    "unknown_rule": (N_("Unknown rule"), N_("There is no policy of that name.")),
    "unknown_analyzer": (N_("Unknown analyzer"), N_("There is no analyzer of that name.")),
    "invalid_rule": (N_("Invalid rule"), N_("The policy file is invalid; nothing was stored.")),
    "ambiguous_version": (N_("Ambiguous version"), N_("That version prefix matches more than one version; give more digits.")),
    "reanalysis_required": (N_("Reanalysis required"),
                            N_("This version changes the prompt or the fields: the documents must be read again "
                               "(send \"reanalyze\": true).")),
    "invalid_filter": (N_("Invalid filter"), N_("The filter is invalid.")),
    # Requests
    "bad_request": (N_("Bad request"), N_("The request is invalid.")),
    "invalid_json": (N_("Bad request"), N_("The body is not valid JSON of the expected shape.")),
    "invalid_query": (N_("Invalid query"), N_("A query parameter is invalid.")),
    "invalid_cursor": (N_("Invalid cursor"), N_("The cursor is invalid; start again from the first page.")),
    "invalid_callback_url": (N_("Invalid callback URL"), N_("The callback URL is not allowed.")),
    "invalid_idempotency_key": (N_("Bad request"), N_("The Idempotency-Key header is invalid.")),
    "idempotency_conflict": (N_("Idempotency key reused"),
                             N_("This Idempotency-Key was already used for a different request.")),
    "invalid_review": (N_("Invalid review"), N_("The review is invalid.")),
    "not_reviewable": (N_("Not reviewable"), N_("The job has no decision to review yet.")),
    "invalid_subscription": (N_("Invalid subscription"), N_("The webhook subscription is invalid.")),
    "invalid_role": (N_("Bad request"), N_("That role does not exist.")),
    "invalid_tenant": (N_("Bad request"), N_("That tenant name is invalid.")),
    "conflict": (N_("Conflict"), N_("The request conflicts with the current state; reload and try again.")),
    "csrf_failed": (N_("Form expired or forged"), N_("The form was refused. Reload the page and try again.")),
    "too_deep": (N_("Bad request"), N_("The body is nested too deeply.")),
    # Who may do what
    "unauthorized": (N_("Unauthorized"), N_("Send a valid API key: Authorization: Bearer KEY.")),
    "forbidden": (N_("Forbidden"), N_("This key's role may not do that.")),
    "not_found": (N_("Not found"), N_("No such resource.")),
    "too_many_requests": (N_("Too many requests"), N_("Too many requests; wait a moment and try again.")),
    # Personal data
    "erased": (N_("Erased"), N_("This document's personal data was erased on request.")),
    "purged": (N_("Purged"), N_("This document was deleted under the retention policy.")),
    "invalid_erasure": (N_("Invalid erasure"), N_("The erasure request is invalid.")),
    "job_not_finished": (N_("Job not finished"), N_("The job has not finished yet; try again when it has.")),
    # Expense claims
    "invalid_claim": (N_("Invalid claim"), N_("The expense claim is invalid.")),
    "claim_decided": (N_("Claim decided"), N_("Documents can be added to an open claim only; this one is decided.")),
    "claim_too_large": (N_("Claim too large"), N_("The claim has more documents than one claim may hold.")),
    # Capacity and outages
    "queue_full": (N_("Queue full"), N_("Too much work is waiting; try again shortly.")),
    "too_many_streams": (N_("Too many event streams"), N_("Too many live streams are open; close some and retry.")),
    "database_unavailable": (N_("Database unavailable"),
                             N_("The database cannot be reached right now; nothing was recorded. Retry shortly.")),
    "storage_unavailable": (N_("Storage unavailable"),
                            N_("Document storage cannot be reached right now; nothing was recorded. Retry shortly.")),
    "model_unavailable": (N_("Model unavailable"), N_("The vision-language model is not available on this worker.")),
    "model_out_of_memory": (N_("Model out of memory"), N_("The model ran out of GPU memory on this document.")),
    "internal_error": (N_("Internal server error"), N_("An unexpected error occurred; it has been logged.")),
    # A job's failure (GET /v1/jobs/{id} `error`): the worker's codes
    "analysis_error": (N_("Analysis failed"), N_("The document could not be analysed; the error has been logged.")),
    "transient_error": (N_("Temporary failure"),
                        N_("The analysis failed for a passing reason (a service was unavailable); submit it again.")),
    "worker_lost": (N_("Worker lost"), N_("Every attempt ended without a result (the worker stopped); submit it again.")),
    # HTTP errors with no problem of their own (werkzeug's names, lowercased)
    "method_not_allowed": (N_("Method Not Allowed"), N_("This route does not accept that method.")),
    "not_acceptable": (N_("Not Acceptable"), N_("No representation matches the Accept header.")),
    "request_timeout": (N_("Request Timeout"), N_("The request took too long to arrive.")),
    "gone": (N_("Gone"), N_("The resource is gone.")),
    "length_required": (N_("Length Required"), N_("Send a Content-Length header.")),
    "precondition_failed": (N_("Precondition Failed"), N_("A precondition of the request failed.")),
    "request_entity_too_large": (N_("Request Entity Too Large"), N_("The request body is too large.")),
    "request_uri_too_long": (N_("Request URI Too Long"), N_("The request URL is too long.")),
    "unsupported_media_type": (N_("Unsupported Media Type"), N_("The request body's type is not accepted here.")),
    "requested_range_not_satisfiable": (N_("Requested Range Not Satisfiable"), N_("The requested range cannot be served.")),
    "expectation_failed": (N_("Expectation Failed"), N_("The Expect header cannot be met.")),
    "i'm_a_teapot": (N_("I'm a teapot"), N_("This server is a teapot.")),
    "misdirected_request": (N_("Misdirected Request"), N_("The request reached the wrong server.")),
    "unprocessable_entity": (N_("Unprocessable Entity"), N_("The request is well formed but cannot be processed.")),
    "locked": (N_("Locked"), N_("The resource is locked.")),
    "failed_dependency": (N_("Failed Dependency"), N_("A request this one depends on failed.")),
    "precondition_required": (N_("Precondition Required"), N_("This request must be conditional.")),
    "request_header_fields_too_large": (N_("Request Header Fields Too Large"), N_("The request's headers are too large.")),
    "unavailable_for_legal_reasons": (N_("Unavailable For Legal Reasons"), N_("The resource is unavailable for legal reasons.")),
    "internal_server_error": (N_("Internal Server Error"), N_("An unexpected error occurred; it has been logged.")),
    "not_implemented": (N_("Not Implemented"), N_("This server does not do that.")),
    "bad_gateway": (N_("Bad Gateway"), N_("An upstream server answered badly.")),
    "service_unavailable": (N_("Service Unavailable"), N_("The service is unavailable; try again shortly.")),
    "gateway_timeout": (N_("Gateway Timeout"), N_("An upstream server did not answer in time.")),
    "http_version_not_supported": (N_("HTTP Version Not Supported"), N_("This HTTP version is not supported.")),
}


#: Details raised as they are (no values in them): translated exactly where the catalog has them.
DETAILS = (
    N_("'background' must be true or false."),
    N_("'batch' must be a batch id."),
    N_("'claim' is longer than 20,000 characters."),
    N_('\'claim\' must be a JSON object: {"employee", "purpose", "trip": {"start", "end", "destination", "origin"?}, "cost_center"?, "claimed_amount"?}.'),
    N_("'claimed_amount' must be a number from 0 to 10^12."),
    N_("'claimed_amount' must be a number."),
    N_("'cursor' is not one this API gave out."),
    N_("'fields' must be an object of field names to corrected values."),
    N_("'reanalyze' must be true or false."),
    N_("'reviewed' must be true or false."),
    N_('\'trip\' must be an object: {"start", "end", "destination", "origin"?}.'),
    N_("'version' must be a version string."),
    N_("A review needs a 'comment' saying why."),
    N_("A tenant id is 1-64 letters, digits, '-' or '_'."),
    N_('A trip lasts at most a year.'),
    N_("A trip needs both 'start' and 'end'."),
    N_('Name the policy: {"rule", "version", "filter"}.'),
    N_('Name the two versions: ?from=VERSION&to=VERSION.'),
    N_('No file in the batch could be accepted.'),
    N_('No file of the claim could be accepted.'),
    N_('No such run.'),
    N_('Only a decided claim can be reviewed; this one is still open.'),
    N_('Pages are numbered from 1.'),
    N_("Send 'Authorization: Bearer <API key>'. Create a key with `docket keys create --role submitter --tenant <tenant>`."),
    N_('Send JSON {"url", "event_types"}.'),
    N_('Send a JSON object.'),
    N_('Send a JSON object: {"decision", "comment", "fields"?}.'),
    N_('Send a JSON object: {"decision", "comment"}.'),
    N_("Send a batch as multipart/form-data with repeated 'files' fields."),
    N_("Send a claim as multipart/form-data: 'claim' (JSON), 'rule' and repeated 'files'."),
    N_("Send multipart/form-data (field 'file', or 'files' for a batch), or JSON with 'content_base64'."),
    N_("Send multipart/form-data with a 'file' field, or JSON with 'content_base64'."),
    N_("Send the claim's header as 'claim', a JSON object with at least 'employee'."),
    N_('Send the filter\'s keys at the top level, or only {"filter": {...}}.'),
    N_('Send the policy\'s YAML (Content-Type: application/yaml) or JSON {"source": "..."}.'),
    N_("Send the policy's YAML as 'source' (a string), or the YAML itself with Content-Type: application/yaml."),
    N_('That page link is out of date; start from the first page.'),
    N_('The PDF has no pages.'),
    N_('The PDF is encrypted with a password.'),
    N_('The filter is a JSON object: since, until, batch, decision, reviewed.'),
    N_("The trip's 'end' is before its 'start'."),
    N_('This policy shows its documents to people who are not admins as redacted copies only.'),
    N_('callback_url must be an absolute http(s) URL of at most 2000 characters.'),
)


def localize(code: str, title: str, detail: str) -> tuple[str, str]:
    """``title`` and ``detail`` in the current language (unchanged in English)."""
    if i18n.current() == i18n.DEFAULT:
        return title, detail
    catalog = i18n.translations(i18n.current())
    known = PROBLEMS.get(code)
    title_text = catalog.gettext(known[0] if known else title) if (known or title) else title
    if title_text == (known[0] if known else title) and title:
        title_text = catalog.gettext(title)  # a title of its own (e.g. "Unknown rule")
    translated = catalog.gettext(detail) if detail else detail
    if translated == detail and known:  # no exact translation of this detail: the code's general one
        translated = catalog.gettext(known[1])
    return title_text, translated
