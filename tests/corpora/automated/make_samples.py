"""Writes the crafted samples of tests/corpora/automated/ and tests/corpora/human/ (see README.md).

Run from this folder: ``python make_samples.py``. Every sample is crafted by hand after the shape
of real reports and notices (RFC 5965, RFC 6591, RFC 7489, Amazon SES/SNS, SendGrid, Mailgun,
Postmark, Mailman, LISTSERV, Sympa, carrier gateways); no real mail was copied.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import zipfile
from email.header import Header
from pathlib import Path

HERE = Path(__file__).parent
HUMAN = HERE.parent / "human"
OUR_ID = "<hd.1.abcdef@district.test>"
OUR_MAIL = ("From: Tech help <techhelp@district.test>\r\nTo: alice@example.test\r\n"
            "Subject: Re: [Ticket #12] Printer broken\r\n"
            f"Message-ID: {OUR_ID}\r\nDate: Thu, 19 Nov 2026 10:00:00 +0000\r\n\r\nWe are on it.\r\n")
ROWS: list[dict[str, str]] = []


def write(folder: Path, name: str, kind: str, text: str | bytes) -> None:
    data = text.encode("utf-8") if isinstance(text, str) else text
    (folder / name).write_bytes(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    ROWS.append({"file": f"{folder.name}/{name}", "kind": kind})


def head(sender: str, subject: str, mid: str, extra: str = "", to: str = "techhelp@district.test") -> str:
    if any(ord(c) > 127 for c in subject):
        subject = Header(subject, "utf-8").encode()
    return (f"From: {sender}\nTo: {to}\nSubject: {subject}\nDate: Fri, 20 Nov 2026 09:30:00 +0000\n"
            f"Message-ID: <{mid}>\nMIME-Version: 1.0\n{extra}")


def arf(sender: str, name: str, feedback: str, extra_fields: str = "", subject: str = "Abuse report") -> None:
    kind = "dmarc_report" if feedback == "auth-failure" else "feedback_report"
    write(HERE, name, kind, head(sender, subject, f"{name}@reports.example.net")
          + 'Content-Type: multipart/report; report-type=feedback-report; boundary="arf"\n\n'
          "--arf\nContent-Type: text/plain; charset=us-ascii\n\n"
          "This is an email abuse report for an email message received from IP 192.0.2.25.\n"
          "--arf\nContent-Type: message/feedback-report\n\n"
          f"Feedback-Type: {feedback}\nUser-Agent: ReportBot/2.1\nVersion: 1\n"
          "Original-Mail-From: <techhelp@district.test>\nArrival-Date: Thu, 19 Nov 2026 10:00:05 +0000\n"
          f"Source-IP: 192.0.2.25\nReported-Domain: district.test\n{extra_fields}\n"
          f"--arf\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n{OUR_MAIL}--arf--\n")


def auto_reply_subjects() -> None:
    subjects = {
        "en_auto_reply": "Auto reply: Printer broken", "en_automatic_reply": "Automatic reply: Printer broken",
        "en_out_of_office": "Out of Office: Printer broken", "de_automatische_antwort": "Automatische Antwort: Drucker",
        "de_abwesenheitsnotiz": "Abwesenheitsnotiz: Drucker kaputt", "fr_reponse": "Réponse automatique : Imprimante",
        "es_respuesta": "Respuesta automática: Impresora", "it_risposta": "Risposta automatica: Stampante",
        "nl_antwoord": "Automatisch antwoord: Printer", "pt_resposta": "Resposta automática: Impressora",
        "pl_odpowiedz": "Odpowiedź automatyczna: Drukarka", "ja_jidou_outou": "自動応答: プリンター",
        "zh_zidong_huifu": "自动回复: 打印机", "sv_autosvar": "Autosvar: Skrivaren",
    }
    for name, subject in subjects.items():
        write(HERE, f"subject_{name}.eml", "auto_reply",
              head("Carol Teacher <carol@school.example.org>", subject, f"{name}@school.example.org")
              + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
              "Thank you for your message. I am away until 30 November and will read it when I return.\n")
    # a Japanese client that sends ISO-2022-JP, and a raw 8-bit subject
    write(HERE, "subject_ja_iso2022.eml", "auto_reply",
          head("Kenji <kenji@example.jp>", "=?ISO-2022-JP?B?" + base64.b64encode("自動応答: 不在".encode("iso2022_jp")).decode()
               + "?=", "ja2@example.jp") + "Content-Type: text/plain; charset=iso-2022-jp\n\n"
          + "Away until Monday.\n")
    write(HERE, "subject_de_raw8bit.eml", "auto_reply",
          (head("Dieter <dieter@example.de>", "ABWESENHEITSNOTIZ", "de8@example.de").replace("ABWESENHEITSNOTIZ", "\x00")
           + "Content-Type: text/plain; charset=iso-8859-1\n\nIch bin bis Montag nicht im B\xfcro.\n")
          .encode("latin-1").replace(b"\x00", "Automatische Antwort: Drucker läuft nicht".encode("latin-1")))


def dmarc_aggregate() -> None:
    xml = (b'<?xml version="1.0"?><feedback><report_metadata><org_name>google.com</org_name>'
           b"<report_id>1234</report_id></report_metadata><policy_published><domain>district.test</domain>"
           b"</policy_published></feedback>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("google.com!district.test!1763510400!1763596799.xml", xml)
    zipped = base64.encodebytes(buf.getvalue()).decode()
    write(HERE, "dmarc_aggregate_zip.eml", "dmarc_report",
          head("noreply-dmarc-support@google.com",
               "Report domain: district.test Submitter: google.com Report-ID: 1234", "dmarc1@google.com")
          + 'Content-Type: multipart/mixed; boundary="d"\n\n--d\nContent-Type: text/plain\n\n\n'
          '--d\nContent-Type: application/zip; name="google.com!district.test!1763510400!1763596799.zip"\n'
          'Content-Disposition: attachment; filename="google.com!district.test!1763510400!1763596799.zip"\n'
          f"Content-Transfer-Encoding: base64\n\n{zipped}--d--\n")
    gz = base64.encodebytes(gzip.compress(xml)).decode()
    write(HERE, "dmarc_aggregate_gzip.eml", "dmarc_report",
          head("DMARC Aggregate Report <dmarcreport@microsoft.com>",
               "[Preview] Report Domain: district.test Submitter: protection.outlook.com Report-ID: 5e6f",
               "dmarc2@microsoft.com")
          + 'Content-Type: multipart/mixed; boundary="d"\n\n--d\nContent-Type: text/html\n\n<p>This is a DMARC aggregate report.</p>\n'
          '--d\nContent-Type: application/gzip\nContent-Disposition: attachment; '
          'filename="protection.outlook.com!district.test!1763510400!1763596800.xml.gz"\n'
          f"Content-Transfer-Encoding: base64\n\n{gz}--d--\n")
    write(HERE, "dmarc_aggregate_subject_only.eml", "dmarc_report",
          head("dmarc@reports.example.net", "Report Domain: district.test Submitter: example.net Report-ID: <77>",
               "dmarc3@example.net")
          + 'Content-Type: multipart/mixed; boundary="d"\n\n--d\nContent-Type: text/plain\n\nSee attached.\n'
          '--d\nContent-Type: application/gzip; name="report.gz"\nContent-Transfer-Encoding: base64\n\n'
          f"{gz}--d--\n")


def json_notifications() -> None:
    ses = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": [
        {"emailAddress": "gone@example.test", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
        "mail": {"source": "techhelp@district.test", "messageId": "0100018c-ses-id",
                 "commonHeaders": {"messageId": OUR_ID, "subject": "Re: [Ticket #12] Printer broken"}}}
    sns = {"Type": "Notification", "MessageId": "2b3c", "TopicArn": "arn:aws:sns:eu-west-1:1:ses-bounces",
           "Message": json.dumps(ses), "Timestamp": "2026-11-20T09:30:00.000Z"}
    write(HERE, "ses_sns_bounce.eml", "bounce",
          head("AWS Notifications <no-reply@sns.amazonaws.com>", "AWS Notification Message", "sns1@sns.amazonaws.com")
          + "Content-Type: text/plain; charset=UTF-8\n\n" + json.dumps(sns, indent=1) + "\n\n--\n"
          "If you wish to stop receiving notifications from this topic, please click or visit the link below "
          "to unsubscribe:\nhttps://sns.eu-west-1.amazonaws.com/unsubscribe.html\n")
    complaint = {"notificationType": "Complaint", "complaint": {"complainedRecipients": [
        {"emailAddress": "annoyed@example.test"}], "complaintFeedbackType": "abuse"},
        "mail": {"source": "techhelp@district.test", "commonHeaders": {"messageId": OUR_ID}}}
    write(HERE, "ses_complaint.eml", "feedback_report",
          head("ses-alerts@district.test", "Amazon SES Complaint", "ses2@district.test")
          + "Content-Type: text/plain\n\n" + json.dumps(complaint) + "\n")
    sendgrid = [{"email": "gone@example.test", "timestamp": 1763631000, "event": "bounce", "sg_event_id": "ZTQ",
                 "sg_message_id": "14c5.filter", "smtp-id": OUR_ID, "reason": "550 5.1.1 unknown", "type": "bounce"}]
    write(HERE, "sendgrid_event.eml", "bounce",
          head("events@relay.example.net", "SendGrid event webhook", "sg1@relay.example.net")
          + "Content-Type: application/json\n\n" + json.dumps(sendgrid) + "\n")
    mailgun = {"signature": {"timestamp": "1763631000", "token": "abc"}, "event-data": {
        "event": "failed", "severity": "permanent", "recipient": "gone@example.test",
        "message": {"headers": {"message-id": OUR_ID.strip("<>")}},
        "delivery-status": {"code": 550, "message": "No such user"}}}
    write(HERE, "mailgun_event.eml", "bounce",
          head("Webhook relay <hooks@ops.example.net>", "Mailgun webhook: failed", "mg1@ops.example.net")
          + 'Content-Type: multipart/mixed; boundary="j"\n\n--j\nContent-Type: text/plain\n\nEvent attached.\n'
          '--j\nContent-Type: application/json; name="event.json"\nContent-Disposition: attachment; filename="event.json"\n\n'
          + json.dumps(mailgun) + "\n--j--\n")
    postmark = {"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "MessageID": "883953f4",
                "Email": "gone@example.test", "Description": "The server was unable to deliver your message"}
    write(HERE, "postmark_bounce.eml", "bounce",
          head("Postmark <support@postmarkapp.example>", "Bounce webhook", "pm1@postmarkapp.example")
          + "Content-Type: text/plain\n\n" + json.dumps(postmark) + "\n")


def list_and_gateway_notices() -> None:
    write(HERE, "mailman_moderation.eml", "list_notice",
          head("staff-bounces@lists.district.test", "Your message to Staff awaits moderator approval", "mm1@lists.district.test",
               "X-Mailman-Version: 2.1.39\nX-List-Administrivia: yes\n")
          + "Content-Type: text/plain\n\nYour mail to 'Staff' with the subject\n\n    Re: [Ticket #12] Printer broken\n\n"
          "Is being held until the list moderator can review it for approval.\n\nThe reason it is being held:\n\n"
          "    Post by non-member to a members-only list\n")
    write(HERE, "listserv_rejected.eml", "list_notice",
          head("L-Soft list server at LISTSERV.EXAMPLE.EDU (1.8e) <LISTSERV@LISTSERV.EXAMPLE.EDU>",
               "Rejected posting to TECH-L@LISTSERV.EXAMPLE.EDU", "ls1@LISTSERV.EXAMPLE.EDU")
          + "Content-Type: text/plain\n\nYou are not authorized to send mail to the TECH-L list from your\n"
          "techhelp@district.test account. You might be authorized to send to the list from another account,\n"
          "or perhaps when using another mail program.\n")
    write(HERE, "sympa_loop.eml", "list_notice",
          head("SYMPA <sympa@lists.example.org>", "Loop alert", "sy1@lists.example.org", "Auto-Submitted: auto-replied\n")
          + "Content-Type: text/plain\n\nA loop was detected on list staff@lists.example.org: the message was not distributed.\n")
    write(HERE, "majordomo_not_member.eml", "list_notice",
          head("owner-staff@lists.example.net", "BOUNCE staff@lists.example.net: Non-member submission from [techhelp@district.test]",
               "mj1@lists.example.net")
          + "Content-Type: text/plain\n\nYou are not a member of this list; your message was not distributed.\n")
    write(HERE, "googlegroups_not_member.eml", "list_notice",
          head("Google Groups <noreply@googlegroups.com>", "You are not a member of staff", "gg1@googlegroups.com")
          + "Content-Type: text/plain\n\nYou tried to post to staff@googlegroups.com but you are not a member of the group.\n")
    write(HERE, "carrier_vzw.eml", "gateway_notice",
          head("VZWMail Error <error-notice@vzwpix.com>", "Message not delivered", "vz1@vzwpix.com")
          + "Content-Type: text/plain\n\nThe message you sent to 5550101234 could not be delivered to the phone: "
          "the number is not a valid wireless subscriber.\n")
    write(HERE, "carrier_tmobile.eml", "gateway_notice",
          head("mms@tmomail.net", "Unable to deliver message", "tm1@tmomail.net")
          + "Content-Type: text/plain\n\nUnable to deliver message: 5550107777 is not a valid mobile number.\n")
    write(HERE, "sms_gateway_error.eml", "gateway_notice",
          head("SMS Gateway <sms-gateway@notify.example-sms.test>", "SMS delivery failed: invalid destination number",
               "sms1@notify.example-sms.test")
          + "Content-Type: text/plain\n\nYour text message to +15550100000 failed. Error code 21211 occurred.\n")
    write(HERE, "precedence_noreply.eml", "bulk",
          head("Vendor Portal <noreply@vendor.example.com>", "Your weekly summary", "np1@vendor.example.com",
               "Precedence: junk\n")
          + "Content-Type: text/plain\n\nThere were 3 logins to your account this week.\n")


def reports() -> None:
    arf("Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>", "arf_yahoo.eml", "abuse")
    arf("AOL Postmaster <postmaster@aol.com>", "arf_postmaster.eml", "abuse",
        subject="Email Feedback Report for IP 192.0.2.25")
    arf("dmarc-failures@reports.example.net", "dmarc_failure.eml", "auth-failure",
        "Auth-Failure: dmarc\nDelivery-Result: reject\nIdentity-Alignment: dkim\n",
        subject="DMARC failure report for district.test")
    write(HERE, "jmrp_forwarded.eml", "feedback_report",
          head("staff@hotmail.com", "complaint about message from 192.0.2.25", "jmrp1@hotmail.com",
               "X-HmXmrOriginalRecipient: <annoyed@outlook.example>\n")
          + 'Content-Type: multipart/mixed; boundary="m"\n\n--m\nContent-Type: text/plain\n\n'
          "This is a complaint about a message sent from your network.\n"
          f"--m\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n{OUR_MAIL}--m--\n")
    write(HERE, "arf_inline_text.eml", "feedback_report",
          head("Abuse desk <abuse-reports@isp.example>", "FW: abuse report", "ab1@isp.example")
          + "Content-Type: text/plain\n\nThis is an email abuse report.\n\nFeedback-Type: abuse\n"
          "User-Agent: ISP-FBL/1.0\nVersion: 1\nSource-IP: 192.0.2.25\n\n" + OUR_MAIL)


def humans() -> None:
    def human(name: str, subject: str, body: str, sender: str = "Dana Parent <dana@example.test>",
              extra: str = "", ctype: str = "text/plain; charset=utf-8") -> None:
        write(HUMAN, name, "normal", head(sender, subject, f"{name}@example.test", extra)
              + f"Content-Type: {ctype}\nContent-Transfer-Encoding: 8bit\n\n{body}")

    human("mentions_delivery_failed.eml", "Projector bulbs",
          "Hi,\n\nthe delivery failed for the projector bulbs we ordered: the courier says the address was wrong.\n"
          "Could you check the order?\n\nThanks, Dana\n")
    human("mentions_out_of_office.eml", "Printer before the holidays",
          "Hello, I will be out of office next week. Could you fix the printer in room 12 before Friday?\n")
    human("subject_out_of_office_equipment.eml", "Out of office equipment request",
          "We need two laptops for the staff working from home.\n")
    human("mentions_not_a_member.eml", "Add me to the staff list",
          "The list says I am not a member of the staff list. Could you add me? Loop alert emails keep coming too.\n")
    human("mentions_undeliverable_html.eml", "Mails to parents",
          "<html><body><p>Since Monday my mails to parents come back with <b>Mail delivery failed</b> and "
          "&quot;undeliverable&quot;. What is wrong?</p></body></html>\n", ctype="text/html; charset=utf-8")
    human("json_snippet.eml", "Webhook question",
          'Hi team,\n\nour script prints this:\n\n{"event": "bounce", "email": "x@example.test"}\n\nIs that normal?\n')
    human("sms_from_phone.eml", "Projector", "Projector in room 5 is broken again\n",
          sender="5550104444@vtext.com")
    human("request_address.eml", "New account",
          "Please create an account for the new teacher.\n", sender="IT Requests <it-request@school.example.org>")
    human("dmarc_question.eml", "DMARC report question",
          "We received something called a DMARC aggregate report. Should we worry?\n")
    human("auto_submitted_no.eml", "Printer", "Printer broken\n", extra="Auto-Submitted: no\n")
    write(HUMAN, "forwarded_bounce.eml", "normal",
          head("Dana Parent <dana@example.test>", "Fwd: Undelivered Mail Returned to Sender", "fwd1@example.test")
          + 'Content-Type: multipart/mixed; boundary="f"\n\n--f\nContent-Type: text/plain\n\n'
          "Hi, I got this when writing to the principal. Can you help?\n\n"
          "--f\nContent-Type: message/rfc822\n\nFrom: MAILER-DAEMON@mx.example.test\nSubject: Undelivered Mail Returned to Sender\n\n"
          "This is the mail system at host mx.example.test. Your message could not be delivered.\n--f--\n")
    write(HUMAN, "forwarded_auto_reply.eml", "normal",
          head("Dana Parent <dana@example.test>", "Fwd: Automatic reply: Printer broken", "fwd2@example.test")
          + "Content-Type: text/plain\n\nThe teacher is away, who else can help?\n\n"
          "---------- Forwarded message ---------\nFrom: Carol <carol@school.example.org>\n"
          "Subject: Automatic reply: Printer broken\n\nI am out of the office until Monday.\n")


def main() -> None:
    reports()
    dmarc_aggregate()
    json_notifications()
    list_and_gateway_notices()
    auto_reply_subjects()
    humans()
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in sorted(ROWS, key=lambda r: r["file"]))
    (HERE / "expected.jsonl").write_text(lines, encoding="utf-8")


if __name__ == "__main__":
    main()
