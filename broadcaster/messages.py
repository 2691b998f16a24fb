"""The words loa says to people, in each language it speaks: one catalogue, keyed like Home Assistant's
`translation_key`, with `{name}` placeholders filled from an error's or a reason's parameters.

Code raises `LoaError("unknown_zone", {"zone": ..., "known": ...})` and never writes the sentence
itself, so the API, the CLI and (later) the web desk say the same thing in the person's language, and
a new language is one more column here. A key is an error's English code, or `<code>.<variant>` when
one code is said in several ways (the code a program sees is the part before the dot); `reason.<code>`
keys are the outcomes stored in the broadcasts' and deliveries' `reason` columns. `{name:duration}`
reads a number of seconds the way the language says a length ("3 phút 20 giây", "3 min 20 s").

Standard library only: `loa agent` on a speaker's small computer may import this.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

# fmt: off
CATALOGUE: dict[str, dict[str, str]] = {
    # ------------------------------------------------------------ requests an officer makes
    "empty_text": {
        "vi": "Nội dung thông báo đang trống.",
        "en": "The announcement text is empty.",
    },
    "text_too_long": {
        "vi": "Nội dung quá dài (tối đa {max} ký tự).",
        "en": "The text is too long (at most {max} characters).",
    },
    "bad_priority": {
        "vi": "Mức ưu tiên phải là: normal, priority hoặc emergency.",
        "en": "The priority must be normal, priority or emergency.",
    },
    "bad_priority.bulletin": {
        "vi": "Tin khẩn cấp phát ngay, không xếp vào bản tin.",
        "en": "An emergency airs at once; it cannot be queued in a bulletin.",
    },
    "bad_priority.programme": {
        "vi": "Chương trình lặp lại chỉ ở mức normal hoặc priority.",
        "en": "A recurring programme can only be normal or priority.",
    },
    "time_in_past": {
        "vi": "Thời điểm {time} đã qua; hãy chọn một thời điểm trong tương lai.",
        "en": "{time} has passed; choose a time in the future.",
    },
    "time_in_past.year": {
        "vi": "Thời điểm {time} đã qua. Nếu định phát vào năm sau, hãy ghi cả năm, ví dụ: {next}.",
        "en": "{time} has passed. If you meant next year, write the year, as in {next}.",
    },
    "time_too_far": {
        "vi": "Thời điểm {time} quá xa; chỉ hẹn trước được tối đa {days} ngày.",
        "en": "{time} is too far ahead; airings can be set at most {days} days ahead.",
    },
    # The forms are schedules.when.FORMS (a test keeps the two the same).
    "bad_time": {
        "vi": "Không hiểu thời điểm '{text}'. Các cách viết được: 17:30, 7h30, 7h tối, 25/12 7h30, ngày mai 7h, "
              "thứ hai 7h30, 2026-12-25 07:30, +10m, 10 phút nữa, now.",
        "en": "Cannot read the time '{text}'. Forms understood: 17:30, 7h30, 7h tối, 25/12 7h30, ngày mai 7h, "
              "thứ hai 7h30, 2026-12-25 07:30, +10m, 10 phút nữa, now.",
    },
    "bad_time.clock": {
        "vi": "Giờ không hợp lệ: '{text}'.",
        "en": "Not a valid time of day: '{text}'.",
    },
    "bad_time.no_clock": {
        "vi": "'{text}' là một ngày, chưa có giờ phát; hãy thêm giờ, ví dụ: {text} 7h30.",
        "en": "Cannot read '{text}' as a start time: it names a day but no hour; add one, as in '{text} 7h30'.",
    },
    "bad_time.date": {
        "vi": "'{text}': không có ngày {date} trong lịch.",
        "en": "'{text}': there is no day {date} in the calendar.",
    },
    "bad_time.weekday": {
        "vi": "Ngày {date} không rơi vào thứ đã ghi trong '{text}'; hãy sửa lại ngày hoặc thứ.",
        "en": "{date} does not fall on the weekday written in '{text}'; correct the date or the weekday.",
    },
    "bad_time.iso": {
        "vi": "Không hiểu thời điểm '{text}'; dùng dạng 2026-11-25T06:00.",
        "en": "Cannot read the time '{text}'; use the form 2026-11-25T06:00.",
    },
    "end_before_start.range": {
        "vi": "Thời điểm kết thúc phải sau thời điểm bắt đầu.",
        "en": "The end must come after the start.",
    },
    "no_zone": {
        "vi": "Chưa chọn khu vực phát.",
        "en": "No zone was chosen.",
    },
    "no_zone.ics": {
        "vi": "Cần --zone để xuất lịch .ics.",
        "en": "--zone is needed to export an .ics calendar.",
    },
    "unknown_zone": {
        "vi": "Không có khu vực '{zone}'. Các khu vực hiện có: {known}.",
        "en": "There is no zone '{zone}'. Existing zones: {known}.",
    },
    "unknown_zone.village": {
        "vi": "Không có thôn '{zone}'.",
        "en": "There is no village '{zone}'.",
    },
    "unknown_zone.device_village": {
        "vi": "Không có thôn «{zone}»; hãy tạo thôn trước.",
        "en": "There is no village «{zone}»; add the village first.",
    },
    "unknown_zone.zone": {
        "vi": "Không có khu vực «{zone}».",
        "en": "There is no zone «{zone}».",
    },
    "bad_zone_id": {
        "vi": "Mã khu vực chỉ gồm chữ thường không dấu, số và dấu '-' (ví dụ: thon-3).",
        "en": "A zone id has only lower-case letters without diacritics, digits and '-' (for example thon-3).",
    },
    "bad_zone_kind": {
        "vi": "Loại khu vực phải là village (thôn) hoặc group (nhóm thôn).",
        "en": "A zone is a village or a group (of villages).",
    },
    "zone_exists": {
        "vi": "Khu vực '{zone}' đã có.",
        "en": "The zone '{zone}' already exists.",
    },
    "zone_id_missing": {
        "vi": "Cần mã khu vực.",
        "en": "A zone id is needed.",
    },
    "empty_group": {
        "vi": "Nhóm cần ít nhất một thôn.",
        "en": "A group needs at least one village.",
    },
    "bad_quiet_hours": {
        "vi": "Giờ yên tĩnh viết dạng HH:MM-HH:MM, ví dụ 22:00-05:30.",
        "en": "Write quiet hours as HH:MM-HH:MM, for example 22:00-05:30.",
    },
    "no_bulletin": {
        "vi": "Không có bản tin số {bulletin} nào sắp tới còn chỗ cho mục này.",
        "en": "No coming bulletin of programme {bulletin} has room for this item.",
    },
    "bad_kind": {
        "vi": "Loại chương trình phải là relay (tiếp sóng), notice (thông báo lặp lại) hoặc bulletin (bản tin).",
        "en": "A programme is a relay, a notice (repeated) or a bulletin.",
    },
    "empty_title": {
        "vi": "Chương trình cần có tên.",
        "en": "A programme needs a title.",
    },
    "empty_title.option": {
        "vi": "Chương trình cần có tên (--title).",
        "en": "A programme needs a title (--title).",
    },
    "bad_duration.programme": {
        "vi": "Tiếp sóng và bản tin cần thời lượng (giây) lớn hơn 0 và không quá {max} giây.",
        "en": "Relays and bulletins need a duration (in seconds) greater than 0 and at most {max} seconds.",
    },
    "bad_text": {
        "vi": "Trường '{field}' có ký tự không hợp lệ (ở vị trí {position}); hãy gõ lại hoặc dán lại đoạn đó.",
        "en": "The field '{field}' holds an invalid character (at position {position}); type or paste that part again.",
    },
    "recurrence_too_long": {
        "vi": "Lịch lặp quá dài (tối đa {max} ký tự).",
        "en": "The recurrence is too long (at most {max} characters).",
    },
    "body_too_large": {
        "vi": "Yêu cầu quá lớn (tối đa {max_kb} KB); bản ghi âm dài hãy cắt ngắn hoặc nén lại.",
        "en": "The request is too large (at most {max_kb} KB); cut or compress a long recording.",
    },
    "length_required": {
        "vi": "Yêu cầu cần cho biết độ dài (Content-Length).",
        "en": "The request must state its length (Content-Length).",
    },
    "title_too_long": {
        "vi": "Tiêu đề quá dài (tối đa {max} ký tự).",
        "en": "The title is too long (at most {max} characters).",
    },
    "bad_order": {
        "vi": "Thứ tự phải là một số từ -{max} đến {max}.",
        "en": "The order must be a number from -{max} to {max}.",
    },
    "never_fires.bulletin": {
        "vi": "Bản tin không có buổi nào trong thời gian tới.",
        "en": "The bulletin has no edition in the coming days.",
    },
    "not_found": {
        "vi": "Không tìm thấy.",
        "en": "Not found.",
    },
    "not_found.announcement": {
        "vi": "Không có thông báo số {id}.",
        "en": "There is no announcement {id}.",
    },
    "not_found.broadcast": {
        "vi": "Không có lượt phát số {id}.",
        "en": "There is no broadcast {id}.",
    },
    "bad_report_day": {
        "vi": "Không hiểu ngày '{text}': báo cáo tính theo ngày, ví dụ 01/11/2026 hoặc 2026-11-01.",
        "en": "Cannot read the day '{text}': a report counts whole days, e.g. 01/11/2026 or 2026-11-01.",
    },
    "report_output_missing": {
        "vi": "Định dạng {format} cần tệp để ghi: thêm --output TỆP.",
        "en": "The {format} format needs a file to write: add --output FILE.",
    },
    "report_output_dir": {
        "vi": "Không có thư mục để ghi '{path}'.",
        "en": "There is no folder to write '{path}' in.",
    },
    # ------------------------------------------------------------ the desk's forms (broadcaster/web/)
    "bad_date": {
        "vi": "Không hiểu ngày «{text}»; hãy chọn ngày trên lịch (dạng 2026-11-25).",
        "en": "Cannot read the date «{text}»; pick a day on the calendar (the form 2026-11-25).",
    },
    "form_expired": {
        "vi": "Biểu mẫu đã cũ; hãy nhập lại và gửi lần nữa.",
        "en": "The form has expired; fill it in and send it again.",
    },
    "not_found.render": {
        "vi": "Không có lượt chuyển giọng nói này.",
        "en": "There is no such render.",
    },
    "render_interrupted": {
        "vi": "Lượt chuyển giọng nói bị gián đoạn (máy chủ làm việc này đã dừng); hãy thử lại.",
        "en": "The render was interrupted (the server doing it stopped); try again.",
    },
    "not_found.audio": {
        "vi": "Không có tệp âm thanh này.",
        "en": "There is no such audio file.",
    },
    "reason_too_long": {
        "vi": "Lý do quá dài (tối đa {max} ký tự).",
        "en": "The reason is too long (at most {max} characters).",
    },
    "invalid_request": {
        "vi": "Yêu cầu không hợp lệ ở trường: {fields}.",
        "en": "Invalid request, at: {fields}.",
    },
    "http_error": {
        "vi": "Yêu cầu HTTP không được chấp nhận (mã {status}).",
        "en": "The HTTP request was refused (status {status}).",
    },
    # ------------------------------------------------------------ the technician's commands
    "unknown_user": {
        "vi": "Không có người dùng hệ thống «{name}».",
        "en": "There is no system user «{name}».",
    },
    "bad_broker_url": {
        "vi": "Địa chỉ broker không hợp lệ: '{url}' (mqtt:// hoặc mqtts://).",
        "en": "Not a valid broker address: '{url}' (mqtt:// or mqtts://).",
    },
    "broker_url_unknown": {
        "vi": "Chưa biết broker của loa ở địa chỉ nào: daemon chưa chạy lần nào với thư mục dữ liệu {data_dir} "
              "(nó chọn cổng khi khởi động). Hãy chạy daemon trước, hoặc dùng --broker-url mqtt://IP:cổng.",
        "en": "The address of loa's broker is not known yet: no daemon has run on the data folder {data_dir} "
              "(it picks its port when it starts). Start the daemon first, or give --broker-url mqtt://IP:port.",
    },
    "bad_device_id": {
        "vi": "Mã thiết bị «{device}» không hợp lệ: chỉ dùng chữ không dấu, số, '-' và '_' (tối đa 64).",
        "en": "The device id «{device}» is not valid: use letters without diacritics, digits, '-' and '_' "
              "(at most 64).",
    },
    "device_exists": {
        "vi": "Thiết bị «{device}» đã có; mỗi thiết bị chỉ cấp phát một lần.",
        "en": "The device «{device}» already exists; a device is provisioned once.",
    },
    "not_in_zone": {
        "vi": "Thôn «{village}» không thuộc khu vực «{zone}».",
        "en": "The village «{village}» is not in the zone «{zone}».",
    },
    "bad_ca_file": {
        "vi": "Không tìm thấy tệp CA {path}.",
        "en": "The CA file {path} was not found.",
    },
    "broker_port_taken": {
        "vi": "Cổng {host}:{port} của broker đang bị một chương trình khác chiếm, mà mọi thiết bị đã cấp phát "
              "đều kết nối tới cổng này: hãy dừng chương trình đó (ss -ltnp 'sport = :{port}'), rồi chạy lại "
              "daemon. Muốn đổi cổng thì đặt [broker] port và cấp phát lại thiết bị ({state_dir}/port.json).",
        "en": "The broker's port {host}:{port} is held by another program, and every provisioned device "
              "dials that port: stop that program (ss -ltnp 'sport = :{port}') and start the daemon again. To "
              "move the broker, set [broker] port and provision the devices again ({state_dir}/port.json).",
    },
    "bad_state_dir": {
        "vi": "Thư mục trạng thái của thiết bị phải là đường dẫn tuyệt đối trên thiết bị: '{path}'.",
        "en": "A device's state folder must be an absolute path on the device: '{path}'.",
    },
    # ------------------------------------------------------------ the schema and several daemons (docs/deployment.md)
    "schema_behind": {
        "vi": "Cơ sở dữ liệu đang ở phiên bản {current}, bản loa này cần {head}: chạy `loa db upgrade` một lần "
              "(sao lưu trước), rồi khởi động lại.",
        "en": "The database schema is at revision {current}; this loa needs {head}: run `loa db upgrade` once "
              "(after a backup), then start again.",
    },
    "cluster_needs_postgres": {
        "vi": "Nhiều daemon ([cluster] enabled) chỉ chạy trên PostgreSQL; với SQLite chỉ một daemon được chạy.",
        "en": "Several daemons ([cluster] enabled) need PostgreSQL; on SQLite only one daemon may run.",
    },
    "cluster_needs_broker": {
        "vi": "Nhiều daemon ([cluster] enabled) cần một broker MQTT chung: đặt [broker] url; Mosquitto do loa "
              "quản lý chỉ thuộc về một daemon.",
        "en": "Several daemons ([cluster] enabled) need one shared MQTT broker: set [broker] url; a managed "
              "Mosquitto belongs to one daemon only.",
    },
    "instance_taken": {
        "vi": "Một daemon khác đang chạy với tên '{instance}' trên cơ sở dữ liệu này: đặt [cluster] instance "
              "khác cho mỗi daemon.",
        "en": "Another daemon runs as '{instance}' on this database: give each daemon its own [cluster] instance.",
    },
    "no_broker": {
        "vi": "Không biết broker: dùng --broker mqtt://host:port hoặc chạy daemon trước.",
        "en": "No broker is known: use --broker mqtt://host:port or start the daemon first.",
    },
    "no_devices": {
        "vi": "Không có thiết bị nào để mô phỏng.",
        "en": "There are no devices to simulate.",
    },
    # ------------------------------------------------------------ configuration (broadcaster.config)
    # The Vietnamese sentences carry English in brackets: the technician who reads them may not read
    # Vietnamese, and they have been printed this way since the first release.
    "config_invalid": {
        "vi": "Cấu hình không hợp lệ / invalid configuration ({origin}):\n{problems}",
        "en": "Invalid configuration ({origin}):\n{problems}",
    },
    "config_unknown_section": {
        "vi": "{name}: không có mục cấu hình này (unknown section; known: {known})",
        "en": "{name}: no such configuration section (known: {known})",
    },
    "config_not_table": {
        "vi": "[{section}] phải là một bảng (must be a table)",
        "en": "[{section}] must be a table",
    },
    "config_not_found": {
        "vi": "{path}: không tìm thấy tệp cấu hình (file not found)",
        "en": "{path}: configuration file not found",
    },
    "config_unreadable": {
        "vi": "{path}: không đọc được TOML (unreadable: {error})",
        "en": "{path}: unreadable TOML ({error})",
    },
    "voice_unknown_engine": {
        "vi": "Không có bộ đọc '{engine}'. Các bộ đọc: {known}.",
        "en": "There is no speech engine '{engine}'. Engines: {known}.",
    },
    "voice_unknown": {
        "vi": "Bộ đọc {engine} không có giọng '{voice}'. Các giọng: {known}.",
        "en": "The {engine} engine has no voice '{voice}'. Voices: {known}.",
    },
    "voice_bad_rate": {
        "vi": "Tốc độ đọc '{rate}' không hợp lệ: phải từ 0,5 đến 2 (1 là bình thường).",
        "en": "The speaking rate '{rate}' is not valid: it must be between 0.5 and 2 (1 is normal).",
    },
    "fpt_key_missing": {
        "vi": "speech.engine dùng FPT.AI nhưng thiếu khóa API: đặt LOA_FPT_API_KEY hoặc speech.fpt_api_key_file "
        "(FPT.AI needs an API key: set LOA_FPT_API_KEY or speech.fpt_api_key_file)",
        "en": "speech.engine uses FPT.AI but there is no API key: set LOA_FPT_API_KEY or speech.fpt_api_key_file",
    },
    "fpt_key_file_open": {
        "vi": "{path}: tệp khóa FPT.AI phải chỉ chủ sở hữu đọc được, chmod 600 (key file readable by others: {mode})",
        "en": "{path}: the FPT.AI key file must be readable by its owner alone, chmod 600 (it is {mode})",
    },
    "fpt_key_file_unreadable": {
        "vi": "{path}: không đọc được tệp khóa FPT.AI (unreadable: {error})",
        "en": "{path}: the FPT.AI key file cannot be read ({error})",
    },
    # ------------------------------------------------------------ Piper voices (loa voice install, /voices)
    "voice_not_pinned": {
        "vi": "Không có giọng '{name}' trong danh sách giọng được phép cài. Các giọng: {known}.",
        "en": "There is no voice '{name}' among the voices that may be installed. Voices: {known}.",
    },
    "voice_bad_url": {
        "vi": "Địa chỉ tải giọng '{url}' phải bắt đầu bằng http:// hoặc https://.",
        "en": "The voice download address '{url}' must start with http:// or https://.",
    },
    "voice_download_http": {
        "vi": "Không tải được giọng {name}: máy chủ trả lời HTTP {status_code} cho tệp {file}. Chưa cài gì.",
        "en": "Voice {name} could not be downloaded: the server answered HTTP {status_code} for {file}. "
              "Nothing was installed.",
    },
    "voice_download_size": {
        "vi": "Tệp {file} của giọng {name} có {got} byte, không phải {expected} byte như đã ghim: từ chối, "
              "chưa cài gì.",
        "en": "File {file} of voice {name} is {got} bytes, not the pinned {expected}: refused, nothing installed.",
    },
    "voice_download_truncated": {
        "vi": "Tải giọng {name} bị đứt giữa chừng ({file}: {got}/{expected} byte). Chưa cài gì; hãy thử lại.",
        "en": "The download of voice {name} was cut short ({file}: {got} of {expected} bytes). "
              "Nothing was installed; try again.",
    },
    "voice_download_hash": {
        "vi": "Tệp {file} của giọng {name} có mã SHA-256 khác với mã đã ghim: từ chối, chưa cài gì.",
        "en": "File {file} of voice {name} has a SHA-256 other than the pinned one: refused, nothing installed.",
    },
    "voice_download_timeout": {
        "vi": "Máy chủ không trả lời trong {seconds} giây khi tải giọng {name}. Chưa cài gì; hãy thử lại sau.",
        "en": "The server did not answer within {seconds} s while downloading voice {name}. "
              "Nothing was installed; try again later.",
    },
    "voice_download_unreachable": {
        "vi": "Không kết nối được tới {host} để tải giọng {name} (không có mạng?). Chưa cài gì.",
        "en": "Could not connect to {host} to download voice {name} (no network?). Nothing was installed.",
    },
    "voice_bad_config": {
        "vi": "Tệp cấu hình của giọng {name} không dùng được ({reason}). Chưa cài gì.",
        "en": "The config of voice {name} cannot be used ({reason}). Nothing was installed.",
    },
    "voice_disk": {
        "vi": "Không ghi được giọng {name} vào thư mục giọng ({error}). Chưa cài gì.",
        "en": "Voice {name} could not be written to the voices folder ({error}). Nothing was installed.",
    },
    "voice_install_busy": {
        "vi": "Giọng {name} đang được tải; hãy chờ lần tải này xong.",
        "en": "Voice {name} is already being downloaded; wait for that download to finish.",
    },
    # ------------------------------------------------------------ audio/ (AudioError codes, prefixed)
    "audio_ffmpeg_timeout": {
        "vi": "Xử lý âm thanh quá lâu, vui lòng thử lại.",
        "en": "Processing the audio took too long; please try again.",
    },
    "audio_ffmpeg_failed": {
        "vi": "Không xử lý được âm thanh.",
        "en": "The audio could not be processed.",
    },
    "audio_corrupt": {
        "vi": "Tệp âm thanh bị hỏng hoặc không đầy đủ.",
        "en": "The audio file is damaged or incomplete.",
    },
    "audio_silent": {
        "vi": "Âm thanh không có tiếng (im lặng hoàn toàn).",
        "en": "The audio is completely silent.",
    },
    "audio_empty_text": {
        "vi": "Văn bản không có nội dung để đọc.",
        "en": "The text has nothing to read out.",
    },
    "audio_not_found": {
        "vi": "Không tìm thấy tệp tải lên.",
        "en": "The uploaded file was not found.",
    },
    "audio_empty": {
        "vi": "Tệp tải lên bị rỗng.",
        "en": "The uploaded file is empty.",
    },
    "audio_too_large": {
        "vi": "Tệp quá lớn (tối đa {max_mb} MB).",
        "en": "The file is too large (at most {max_mb} MB).",
    },
    "audio_too_long": {
        "vi": "Bản ghi quá dài (tối đa {max_minutes} phút).",
        "en": "The recording is too long (at most {max_minutes} minutes).",
    },
    "audio_not_audio": {
        "vi": "Tệp tải lên không phải là âm thanh.",
        "en": "The uploaded file is not audio.",
    },
    "audio_engine_failed": {
        "vi": "Không tạo được giọng đọc, vui lòng thử lại sau.",
        "en": "The speech could not be made; please try again later.",
    },
    # ------------------------------------------------------------ schedules/ (ErrorCode values)
    "bad_id": {
        "vi": "Mục phát cần có mã.",
        "en": "An airing needs an id.",
    },
    "bad_duration": {
        "vi": "'{title}': thời lượng phải lớn hơn 0.",
        "en": "'{title}': the duration must be greater than 0.",
    },
    "bad_duration.gap": {
        "vi": "'{title}': khoảng lặng sau không được âm.",
        "en": "'{title}': the silence after it cannot be negative.",
    },
    "bad_duration.alert": {
        "vi": "'{title}': thời lượng và khoảng nghỉ không hợp lệ.",
        "en": "'{title}': the duration or the gap between repeats is not valid.",
    },
    "bad_duration.window": {
        "vi": "Bản tin '{window}': thời lượng âm.",
        "en": "Bulletin '{window}': a length is negative.",
    },
    "bad_duration.bulletin": {
        "vi": "Bản tin '{window}': độ dài phải lớn hơn 0.",
        "en": "Bulletin '{window}': its length must be greater than 0.",
    },
    "end_before_start": {
        "vi": "'{title}': hết hiệu lực trước giờ bắt đầu.",
        "en": "'{title}': it expires before it starts.",
    },
    "end_before_start.too_short": {
        "vi": "'{title}': thời hạn hiệu lực ngắn hơn thời lượng, không thể phát trọn.",
        "en": "'{title}': it is valid for less than its duration, so it cannot air whole.",
    },
    "end_before_start.window": {
        "vi": "Bản tin '{window}': giờ kết thúc trước giờ bắt đầu.",
        "en": "Bulletin '{window}': it ends before it starts.",
    },
    "end_before_start.dates": {
        "vi": "Ngày kết thúc {end} trước ngày bắt đầu {start}.",
        "en": "The end date {end} is before the start date {start}.",
    },
    "bad_priority.background": {
        "vi": "'{title}': chỉ tiếp sóng mới có mức ưu tiên nền.",
        "en": "'{title}': only relays have the background priority.",
    },
    "bad_priority.emergency": {
        "vi": "'{title}': chỉ cảnh báo khẩn cấp mới có mức khẩn cấp.",
        "en": "'{title}': only emergency alerts have the emergency priority.",
    },
    "bad_priority.notice": {
        "vi": "'{title}': thông báo chỉ ở mức thường hoặc ưu tiên.",
        "en": "'{title}': a notice is normal or priority.",
    },
    "bad_relay_url": {
        "vi": "Địa chỉ tiếp sóng '{url}' phải là http:// hoặc https://.",
        "en": "The relay address '{url}' must be http:// or https://.",
    },
    "bad_relay_url.not_relay": {
        "vi": "'{title}': chỉ tiếp sóng mới có luồng.",
        "en": "'{title}': only relays have a stream.",
    },
    "unknown_window": {
        "vi": "'{title}' xếp vào bản tin '{window}' không có.",
        "en": "'{title}' is queued in a bulletin '{window}' that does not exist.",
    },
    "unknown_window.not_notice": {
        "vi": "'{title}': chỉ thông báo mới xếp vào bản tin được.",
        "en": "'{title}': only notices can be queued in a bulletin.",
    },
    "unknown_zone.no_targets": {
        "vi": "'{title}': chưa chọn vùng phát.",
        "en": "'{title}': no zone was chosen.",
    },
    "unknown_zone.id": {
        "vi": "Không có vùng mã '{zone}'.",
        "en": "There is no zone with the id '{zone}'.",
    },
    "unknown_zone.empty": {
        "vi": "Vùng phát không có thôn nào, không có loa nào nghe được.",
        "en": "The zone has no village, so no speaker would hear it.",
    },
    "bad_zone": {
        "vi": "Vùng phát không hợp lệ.",
        "en": "The zone is not valid.",
    },
    "bad_zone.duplicate": {
        "vi": "Mã vùng '{zone}' bị trùng.",
        "en": "The zone id '{zone}' is used twice.",
    },
    "bad_zone.orphan": {
        "vi": "Thôn '{name}' phải thuộc một xã đã khai báo.",
        "en": "The village '{name}' must belong to a declared commune.",
    },
    "bad_zone.group": {
        "vi": "Cụm '{name}' chỉ được gồm các thôn đã khai báo (sai: {wrong}).",
        "en": "The group '{name}' may only hold declared villages (wrong: {wrong}).",
    },
    "in_past": {
        "vi": "'{title}' hết hiệu lực lúc {until}, không còn kịp phát.",
        "en": "'{title}' expires at {until}; there is no time left to air it.",
    },
    "in_past.start": {
        "vi": "'{title}': giờ phát đã qua.",
        "en": "'{title}': its start time has passed.",
    },
    "in_past.expired": {
        "vi": "'{title}' đã hết hiệu lực lúc {until}.",
        "en": "'{title}' expired at {until}.",
    },
    "in_past.bulletin": {
        "vi": "Bản tin '{bulletin}' đã kết thúc lúc {until}.",
        "en": "The bulletin '{bulletin}' ended at {until}.",
    },
    "in_past.relay": {
        "vi": "Tiếp sóng '{title}' đã kết thúc lúc {until}.",
        "en": "The relay '{title}' ended at {until}.",
    },
    "in_quiet_hours": {
        "vi": "'{title}': toàn bộ thời hạn {start}–{end} rơi vào giờ yên tĩnh.",
        "en": "'{title}': all of its validity, {start}–{end}, falls in quiet hours.",
    },
    "in_quiet_hours.item": {
        "vi": "Không xếp được '{title}' ({duration:duration}) từ {start} đến {until}: "
              "toàn bộ thời hạn rơi vào giờ yên tĩnh.",
        "en": "'{title}' ({duration:duration}) cannot be placed between {start} and {until}: "
              "all of that time is in quiet hours.",
    },
    "in_quiet_hours.bulletin": {
        "vi": "'{title}' không vừa {bulletin} ({start}–{end}): cần {duration:duration}, chỉ còn đến {room_until}.",
        "en": "'{title}' does not fit in {bulletin} ({start}–{end}): it needs {duration:duration}, "
              "and there is room only until {room_until}.",
    },
    "in_quiet_hours.relay": {
        "vi": "Tiếp sóng '{title}' {start}–{end} không phát được ở {villages}: "
              "cả chương trình bị các mục khác hoặc giờ yên tĩnh chiếm.",
        "en": "The relay '{title}' {start}–{end} cannot air in {villages}: "
              "other items or quiet hours take all of it.",
    },
    "never_fires": {
        "vi": "Lịch lặp không có lần phát nào trong khoảng ngày đã chọn.",
        "en": "The rule fires on none of the chosen days.",
    },
    "never_fires.repeats": {
        "vi": "'{title}': số lần phát phải từ 1 trở lên.",
        "en": "'{title}': it must play at least once.",
    },
    "never_fires.no_times": {
        "vi": "Lịch lặp không có giờ phát nào.",
        "en": "The rule has no time of day.",
    },
    "never_fires.days": {
        "vi": "Số ngày phát phải từ 1 trở lên.",
        "en": "The number of days must be at least 1.",
    },
    "never_fires.no_time_in": {
        "vi": "Không thấy giờ phát (HH:MM) trong '{spec}'.",
        "en": "No time of day (HH:MM) in '{spec}'.",
    },
    "never_fires.no_weekday": {
        "vi": "Lịch hằng tuần chưa chọn thứ nào.",
        "en": "The weekly rule names no weekday.",
    },
    "bad_recurrence": {
        "vi": "Lịch lặp không hợp lệ.",
        "en": "The recurrence rule is not valid.",
    },
    "bad_recurrence.timezone": {
        "vi": "Giờ phát phải là giờ địa phương, không kèm múi giờ.",
        "en": "Times of day are local, without a time zone.",
    },
    "bad_recurrence.too_long": {
        "vi": "Một đợt phát dài nhất {max} ngày; với lịch không hạn, bỏ 'trong N ngày'.",
        "en": "A series lasts at most {max} days; for a series without an end, leave out 'for N days'.",
    },
    "bad_recurrence.interval_too_long": {
        "vi": "Khoảng lặp dài nhất {max} ngày.",
        "en": "The interval is at most {max} days.",
    },
    "bad_recurrence.interval": {
        "vi": "Khoảng lặp phải từ 1 ngày trở lên.",
        "en": "The interval must be at least 1 day.",
    },
    "bad_recurrence.interval_kind": {
        "vi": "Chỉ lịch 'mỗi N ngày' mới có khoảng lặp khác 1.",
        "en": "Only an 'every N days' rule has an interval other than 1.",
    },
    "bad_recurrence.weekday": {
        "vi": "Thứ trong tuần phải từ 0 (Thứ Hai) đến 6.",
        "en": "Weekdays are 0 (Monday) to 6.",
    },
    "bad_recurrence.weekdays_kind": {
        "vi": "Chỉ lịch hằng tuần mới chọn thứ trong tuần.",
        "en": "Only a weekly rule names weekdays.",
    },
    "bad_recurrence.date": {
        "vi": "Ngày không hợp lệ trong '{spec}'.",
        "en": "Not a valid date in '{spec}'.",
    },
    "bad_recurrence.two_ends": {
        "vi": "Chỉ dùng một trong hai: 'đến ngày' hoặc 'trong N ngày'.",
        "en": "Use one of 'đến ngày' (until a date) and 'trong N ngày' (for N days), not both.",
    },
    "window_too_short": {
        "vi": "Bản tin '{window}': không đủ chỗ cho cả nhạc hiệu và lời giới thiệu.",
        "en": "Bulletin '{window}': there is no room for both the chimes and the heading.",
    },
    "window_too_short.bulletin": {
        "vi": "'{title}' không vừa {bulletin} ({start}–{end}): cần {duration:duration}, chỉ còn đến {room_until}.",
        "en": "'{title}' does not fit in {bulletin} ({start}–{end}): it needs {duration:duration}, "
              "and there is room only until {room_until}.",
    },
    "duplicate_id": {
        "vi": "Mã mục phát '{id}' bị trùng trong yêu cầu.",
        "en": "The airing id '{id}' appears twice in the request.",
    },
    "duplicate_id.window": {
        "vi": "Mã bản tin '{window}' bị trùng.",
        "en": "The bulletin id '{window}' is used twice.",
    },
    "already_on_air": {
        "vi": "'{title}' đã phát đi, không sửa được nữa.",
        "en": "'{title}' has gone on air and can no longer change.",
    },
    "no_free_slot": {
        "vi": "Không xếp được '{title}' ({duration:duration}) từ {start} đến {until}: lịch ở {villages} đã kín.",
        "en": "'{title}' ({duration:duration}) cannot be placed between {start} and {until}: "
              "the timeline in {villages} is full.",
    },
    "no_free_slot.emergency": {
        "vi": "Cảnh báo khẩn '{title}' không phát được trước {until}: các cảnh báo khẩn khác chiếm hết thời gian.",
        "en": "The emergency alert '{title}' cannot air before {until}: other emergency alerts take all the time.",
    },
    "pushed_out": {
        "vi": "'{title}' (đang xếp lúc {start}) bị đẩy ra ngoài thời hạn hiệu lực ({until}) bởi mục ưu tiên hơn: "
              "cần xếp lại hoặc hủy.",
        "en": "'{title}' (placed at {start}) was pushed past the end of its validity ({until}) by a more urgent "
              "item: place it again or cancel it.",
    },
    "missed_after_emergency": {
        "vi": "Bị ngắt lúc {cut_at} bởi cảnh báo khẩn '{emergency}'; không còn chỗ phát lại trước khi hết hiệu lực "
              "lúc {until} ở {villages}: đánh dấu bỏ lỡ.",
        "en": "Cut at {cut_at} by the emergency alert '{emergency}'; no room to play it again before it expires "
              "at {until} in {villages}: marked missed.",
    },
    "relay_preempted": {
        "vi": "Tiếp sóng '{title}' {start}–{end} không phát được ở {villages}: "
              "cả chương trình bị các mục khác hoặc giờ yên tĩnh chiếm.",
        "en": "The relay '{title}' {start}–{end} cannot air in {villages}: "
              "other items or quiet hours take all of it.",
    },
    # ------------------------------------------------------------ outcomes in the `reason` columns
    # Written by dispatch (and the planner's rescheduling) as "<code>" or "<code>: <detail>", and by
    # devices in their acks the same way ("download_failed: HTTP 404"). A template without {detail}
    # gets the detail in brackets. Lower case: they are also read inside a sentence.
    "reason.no_devices": {
        "vi": "không có thiết bị nào trong khu vực",
        "en": "no device in the zone",
    },
    "reason.missed_validity": {
        "vi": "quá thời hạn phát: không còn kịp phát trọn trước khi hết hiệu lực",
        "en": "past its time: it could no longer air whole before it expired",
    },
    "reason.expired_before_dispatch": {
        "vi": "quá thời hạn phát khi hệ thống chưa gửi được lệnh",
        "en": "it expired before the system could send the command",
    },
    "reason.late": {
        "vi": "phát trễ {detail} giây",
        "en": "aired {detail} s late",
    },
    "reason.no_ack": {
        "vi": "thiết bị không xác nhận trước khi lệnh hết hạn",
        "en": "the device did not confirm before the command expired",
    },
    "reason.rescheduled": {
        "vi": "đã được xếp lại lịch",
        "en": "rescheduled",
    },
    "reason.live_ended": {
        "vi": "phiên phát trực tiếp đã kết thúc trước khi gửi tới loa",
        "en": "the live session ended before it was sent to the speakers",
    },
    "reason.recalled": {
        "vi": "đã bị thu hồi",
        "en": "recalled",
    },
    "reason.download_failed": {
        "vi": "lỗi tải âm thanh",
        "en": "the audio download failed",
    },
    "reason.hash_mismatch": {
        "vi": "âm thanh tải về bị sai lệch",
        "en": "the downloaded audio did not match",
    },
    "reason.preempted": {
        "vi": "bị tin ưu tiên cắt ngang",
        "en": "cut by a more urgent item",
    },
    "reason.stopped": {
        "vi": "bị dừng theo lệnh",
        "en": "stopped on command",
    },
    "reason.expired": {
        "vi": "hết hạn",
        "en": "expired",
    },
    "reason.expired_before_start": {
        "vi": "hết hạn trước giờ phát",
        "en": "expired before its start",
    },
    "reason.rejected": {
        "vi": "thiết bị từ chối lệnh",
        "en": "the device refused the command",
    },
    "reason.agent_error": {
        "vi": "lỗi thiết bị",
        "en": "device error",
    },
    "reason.playback_failed": {
        "vi": "lỗi phát âm thanh",
        "en": "playback failed",
    },
    "reason.stream_unsupported": {
        "vi": "không phát được luồng",
        "en": "cannot play the stream",
    },
    "reason.stream_unreachable": {
        "vi": "không mở được luồng tiếp sóng",
        "en": "the relayed stream could not be opened",
    },
    "reason.nothing_played": {
        "vi": "không phát ra giây nào",
        "en": "not a second was played",
    },
    "reason.bad_body": {
        "vi": "lệnh không hợp lệ",
        "en": "invalid command",
    },
    "reason.bad_volume": {
        "vi": "mức âm lượng không hợp lệ",
        "en": "invalid volume",
    },
    "reason.bad_stream_url": {
        "vi": "địa chỉ luồng không hợp lệ",
        "en": "invalid stream address",
    },
    "reason.bad_duration": {
        "vi": "thời lượng không hợp lệ",
        "en": "invalid duration",
    },
    "reason.unsupported": {
        "vi": "lệnh không được hỗ trợ",
        "en": "unsupported command",
    },
    # ------------------------------------------------------------ what a recall did (services/recall.py)
    "recall.done": {
        "vi": "Đã thu hồi thông báo số {id}: hủy {planned} lượt phát chưa gửi và {dispatched} lượt đã gửi; "
              "{devices} thiết bị được lệnh dừng.",
        "en": "Recalled announcement {id}: {planned} airings cancelled before dispatch and {dispatched} already "
              "sent; {devices} devices told to stop.",
    },
    "recall.again": {
        "vi": "Thông báo số {id} đã được {by} thu hồi lúc {at}; không còn lượt phát nào để dừng.",
        "en": "Announcement {id} was recalled by {by} at {at}; nothing is left to stop.",
    },
    # ------------------------------------------------------------ people: accounts, sign-in, emergencies
    "not_signed_in": {
        "vi": "Cần đăng nhập (phiên đăng nhập hoặc mã truy cập Authorization: Bearer).",
        "en": "Sign in first (a session, or an access token as Authorization: Bearer).",
    },
    "bad_credentials": {
        "vi": "Sai tên đăng nhập hoặc mật khẩu.",
        "en": "Wrong user name or password.",
    },
    "too_many_attempts": {
        "vi": "Đăng nhập sai quá nhiều lần; hãy thử lại sau {retry_after_s} giây.",
        "en": "Too many failed sign-ins; try again in {retry_after_s} seconds.",
    },
    "forbidden": {
        "vi": "Vai trò {role} không được phép làm việc này.",
        "en": "The {role} role may not do this.",
    },
    "forbidden.emergency": {
        "vi": "Chỉ vai trò {roles} mới được phát tin khẩn cấp; vai trò của bạn là {role}.",
        "en": "Only the {roles} roles may send an emergency; yours is {role}.",
    },
    "forbidden.token_role": {
        "vi": "Mã truy cập không thể có quyền vượt vai trò {role} của người sở hữu.",
        "en": "An access token cannot do more than its owner's role, {role}.",
    },
    "forbidden.other_user": {
        "vi": "Chỉ quản trị viên mới quản lý được mã truy cập của người khác.",
        "en": "Only an admin manages other people's access tokens.",
    },
    "password_change_required": {
        "vi": "Mật khẩu này chỉ dùng một lần: hãy đặt mật khẩu mới trước (POST /api/v1/session/password).",
        "en": "This password works once: choose a new one first (POST /api/v1/session/password).",
    },
    "bad_host": {
        "vi": "Máy chủ không nhận tên «{host}»; nếu đó là địa chỉ của máy chủ này, thêm nó vào [http] allowed_hosts.",
        "en": "This server does not answer to «{host}»; if it is this server's address, add it to [http] "
              "allowed_hosts.",
    },
    "bad_origin": {
        "vi": "Yêu cầu gửi từ một trang khác ({origin}) bị từ chối.",
        "en": "A request sent from another site ({origin}) is refused.",
    },
    "bad_csrf": {
        "vi": "Thiếu hoặc sai mã chống giả mạo (X-CSRF-Token hoặc trường csrf_token) của phiên đăng nhập.",
        "en": "The session's anti-forgery token (X-CSRF-Token, or the csrf_token field) is missing or wrong.",
    },
    "bad_username": {
        "vi": "Tên đăng nhập chỉ gồm chữ thường không dấu, số, '.', '-' và '_' (1–64 ký tự, bắt đầu bằng chữ).",
        "en": "A user name has only lower-case letters without diacritics, digits, '.', '-' and '_' (1–64, "
              "starting with a letter).",
    },
    "bad_role": {
        "vi": "Vai trò phải là: admin, officer, approver hoặc viewer.",
        "en": "The role must be admin, officer, approver or viewer.",
    },
    "user_exists": {
        "vi": "Người dùng «{user}» đã có.",
        "en": "The user «{user}» already exists.",
    },
    "not_found.user": {
        "vi": "Không có người dùng «{user}».",
        "en": "There is no user «{user}».",
    },
    "not_found.token": {
        "vi": "Không có mã truy cập số {id}.",
        "en": "There is no access token {id}.",
    },
    "password_too_short": {
        "vi": "Mật khẩu cần ít nhất {min} ký tự.",
        "en": "A password needs at least {min} characters.",
    },
    "password_too_long": {
        "vi": "Mật khẩu dài tối đa {max} ký tự.",
        "en": "A password has at most {max} characters.",
    },
    "password_mismatch": {
        "vi": "Hai lần nhập mật khẩu không khớp.",
        "en": "The two passwords do not match.",
    },
    "password_needed": {
        "vi": "Không có terminal để hỏi mật khẩu: dùng --password-stdin hoặc --generate.",
        "en": "No terminal to ask for the password: use --password-stdin or --generate.",
    },
    "display_name_too_long": {
        "vi": "Tên hiển thị quá dài (tối đa {max} ký tự).",
        "en": "The display name is too long (at most {max} characters).",
    },
    "name_too_long": {
        "vi": "Tên quá dài (tối đa {max} ký tự).",
        "en": "The name is too long (at most {max} characters).",
    },
    "empty_name.token": {
        "vi": "Mã truy cập cần một tên (để biết nó dùng vào việc gì).",
        "en": "An access token needs a name (what it is for).",
    },
    "confirm_emergency": {
        "vi": "Tin khẩn cấp sẽ phát {repeats} lần, ngay cả trong giờ yên tĩnh, tại: {villages}. Để phát, gửi lại "
              "đúng yêu cầu này trong {expires_s} giây kèm lý do (reason) và mã xác nhận (confirmation): "
              "{confirmation}",
        "en": "The emergency will play {repeats} times, even in quiet hours, in: {villages}. To air it, send the "
              "same request again within {expires_s} seconds with a reason and the confirmation: {confirmation}",
    },
    "confirm_emergency.again": {
        "vi": "Mã xác nhận không đúng với yêu cầu này, đã dùng hoặc đã hết hạn. Tin khẩn cấp sẽ phát {repeats} lần "
              "tại: {villages}; mã xác nhận mới, dùng được trong {expires_s} giây: {confirmation}",
        "en": "The confirmation does not match this request, was used or has expired. The emergency will play "
              "{repeats} times in: {villages}; a new confirmation, valid for {expires_s} seconds: {confirmation}",
    },
    "confirm_emergency.cli": {
        "vi": "Tin khẩn cấp sẽ phát {repeats} lần, ngay cả trong giờ yên tĩnh, tại: {villages}. Thêm --confirm và "
              "--reason \"lý do\" để phát.",
        "en": "The emergency will play {repeats} times, even in quiet hours, in: {villages}. Add --confirm and "
              "--reason \"why\" to air it.",
    },
    "confirm_emergency.declined": {
        "vi": "Đã hủy: tin khẩn cấp không được phát.",
        "en": "Cancelled: the emergency was not sent.",
    },
    "reason_required": {
        "vi": "Tin khẩn cấp cần lý do (reason): ai yêu cầu, vì sao.",
        "en": "An emergency needs a reason: who asked for it, and why.",
    },
    # ------------------------------------------------------------ going live
    "not_found.live": {
        "vi": "Không có phiên phát trực tiếp số {id} (hoặc phiên đã kết thúc từ lâu).",
        "en": "There is no live session {id} (or it ended long ago).",
    },
    "not_found.stream": {
        "vi": "Không có luồng âm thanh này.",
        "en": "There is no such stream.",
    },
    "forbidden.live": {
        "vi": "Phiên phát trực tiếp này do {by} bắt đầu; chỉ người đó (hoặc quản trị viên, để kết thúc) dùng được.",
        "en": "This live session was started by {by}; only they (or an admin, to end it) may use it.",
    },
    "live_format": {
        "vi": "Trình duyệt gửi âm thanh dạng «{format}»; chỉ nhận audio/webm, audio/ogg hoặc audio/mp4.",
        "en": "The browser sends audio as «{format}»; only audio/webm, audio/ogg or audio/mp4 are taken.",
    },
    "live_gap": {
        "vi": "Thiếu một đoạn âm thanh: đang chờ đoạn số {expected}, nhận được đoạn số {seq}.",
        "en": "A slice of audio is missing: slice {expected} is expected, slice {seq} came.",
    },
    "live_ended": {
        "vi": "Phiên phát trực tiếp số {id} đã kết thúc: {why}.",
        "en": "Live session {id} has ended: {why}.",
    },
    "live_busy": {
        "vi": "{villages} đang nghe phiên phát trực tiếp số {id} của {by}; hãy đợi phiên đó kết thúc.",
        "en": "{villages} are hearing live session {id} by {by}; wait until it ends.",
    },
    "live_quiet_hours": {
        "vi": "Đang trong giờ yên tĩnh ({hours}) ở {villages}: chỉ được phát trực tiếp ở mức khẩn cấp.",
        "en": "It is quiet hours ({hours}) in {villages}: only an emergency may go live.",
    },
    "live_unavailable": {
        "vi": "Máy chủ chưa phát trực tiếp được lúc này ({detail}).",
        "en": "The server cannot go live now ({detail}).",
    },
    "confirm_emergency.live": {
        "vi": "Giọng nói của bạn sẽ phát trực tiếp ở mức KHẨN CẤP, ngay cả trong giờ yên tĩnh, cắt ngang mọi "
              "thứ đang phát, tại: {villages}. Để phát, gửi lại đúng yêu cầu này trong {expires_s} giây kèm lý do "
              "(reason) và mã xác nhận (confirmation): {confirmation}",
        "en": "Your voice will go live as an EMERGENCY, in quiet hours too, cutting whatever is on air, in: "
              "{villages}. To go live, send this same request again within {expires_s} seconds with a reason and "
              "the confirmation: {confirmation}",
    },
    "confirm_emergency.live_again": {
        "vi": "Mã xác nhận không đúng với yêu cầu này, đã dùng hoặc đã hết hạn. Phát trực tiếp khẩn cấp tại: "
              "{villages}; mã xác nhận mới, dùng được trong {expires_s} giây: {confirmation}",
        "en": "The confirmation does not match this request, was used or has expired. Live emergency in: "
              "{villages}; a new confirmation, valid for {expires_s} seconds: {confirmation}",
    },
    "live_end.ended": {
        "vi": "người phát đã kết thúc",
        "en": "ended by the speaker",
    },
    "live_end.idle": {
        "vi": "trình duyệt ngừng gửi âm thanh quá lâu",
        "en": "the browser stopped sending audio for too long",
    },
    "live_end.max_length": {
        "vi": "đã phát hết thời lượng tối đa",
        "en": "it reached the longest a session may last",
    },
    "live_end.recalled": {
        "vi": "đã bị thu hồi",
        "en": "recalled",
    },
    "live_end.shutdown": {
        "vi": "máy chủ dừng",
        "en": "the server stopped",
    },
    "live_end.encoder_failed": {
        "vi": "lỗi xử lý âm thanh trên máy chủ",
        "en": "the server's audio encoder failed",
    },
    # ------------------------------------------------------------ approval (services/approvals.py)
    "bad_state.edit": {
        "vi": "Chỉ sửa được bản nháp hoặc thông báo bị trả lại; thông báo số {id} đang ở trạng thái {state}.",
        "en": "Only a draft or a rejected announcement can be edited; announcement {id} is {state}.",
    },
    "bad_state.submit": {
        "vi": "Chỉ gửi duyệt được bản nháp hoặc thông báo bị trả lại; thông báo số {id} đang ở trạng thái "
              "{state}.",
        "en": "Only a draft or a rejected announcement can be submitted; announcement {id} is {state}.",
    },
    "bad_state.approve": {
        "vi": "Thông báo số {id} không chờ duyệt (trạng thái: {state}); không có gì để duyệt.",
        "en": "Announcement {id} is not awaiting approval (it is {state}); there is nothing to approve.",
    },
    "bad_state.reject": {
        "vi": "Thông báo số {id} không chờ duyệt (trạng thái: {state}); không trả lại được.",
        "en": "Announcement {id} is not awaiting approval (it is {state}); it cannot be rejected.",
    },
    "bad_state.recall": {
        "vi": "Thông báo số {id} chưa được lên lịch (trạng thái: {state}): không có gì để thu hồi. Thông báo đang "
              "chờ duyệt thì người duyệt trả lại.",
        "en": "Announcement {id} is not scheduled (it is {state}): there is nothing to recall. One awaiting "
              "approval is rejected by an approver.",
    },
    "bad_state_filter": {
        "vi": "Trạng thái phải là một trong: {states}.",
        "en": "The state must be one of: {states}.",
    },
    "bad_priority.draft": {
        "vi": "Tin khẩn cấp không lưu nháp, không chờ duyệt: người có quyền gửi thẳng, sau khi xác nhận lần hai.",
        "en": "An emergency is neither drafted nor approved: a person allowed to send one sends it, after a "
              "second confirmation.",
    },
    "forbidden.own_item": {
        "vi": "Không tự duyệt được thông báo số {id} của chính mình; cần một người duyệt khác.",
        "en": "You cannot approve announcement {id}, your own; another approver must.",
    },
    "forbidden.own_programme": {
        "vi": "Không tự duyệt được chương trình số {id} của chính mình; cần một người duyệt khác.",
        "en": "You cannot approve programme {id}, your own; another approver must.",
    },
    "not_found.programme": {
        "vi": "Không có chương trình phát số {id}.",
        "en": "There is no programme {id}.",
    },
    "bad_state.programme": {
        "vi": "Chương trình số {id} không chờ duyệt (trạng thái: {state}); không duyệt hay trả lại được.",
        "en": "Programme {id} is not awaiting approval (it is {state}); it cannot be approved or rejected.",
    },
    "reason_required.reject": {
        "vi": "Cần lý do trả lại (reason), để cán bộ biết phải sửa gì.",
        "en": "A rejection needs a reason, so the officer knows what to fix.",
    },
    "approval_late": {
        "vi": "Giờ phát của thông báo số {id} ({time}) đã qua; hãy trả lại để cán bộ chọn giờ khác.",
        "en": "The time of announcement {id} ({time}) has passed; reject it so the officer can choose another.",
    },
    "reason_required.recall": {
        "vi": "Cần lý do thu hồi (ví dụ: báo nhầm, sai nội dung), để nhật ký ghi lại.",
        "en": "A recall needs a reason (a false alarm, a wrong text) for the record.",
    },
    # ------------------------------------------------------------ the desk's compose page (web/routes/compose.py)
    "compose_no_time": {
        "vi": "Hãy chọn ngày giờ phát, hoặc gõ thời điểm (ví dụ: {forms}).",
        "en": "Pick the date and time it airs, or type one (for example {forms}).",
    },
    "compose_no_recurrence": {
        "vi": "Hãy ghi lịch lặp lại, ví dụ «06:00» hoặc «06:00 và 17:00 trong 3 ngày».",
        "en": "Write the schedule, for example «06:00» or «06:00 và 17:00 trong 3 ngày».",
    },
    "compose_bad_duration": {
        "vi": "Thời lượng «{text}» không đúng: ghi số phút, từ trên 0 đến 1440 (ví dụ: 30).",
        "en": "The length «{text}» is not right: write minutes, above 0 and at most 1440 (for example 30).",
    },
    "compose_no_recording": {
        "vi": "Chưa chọn bản ghi âm: hãy chọn tệp, hoặc ghi âm bằng điện thoại.",
        "en": "No recording is chosen: pick a file, or record one on the phone.",
    },
    "compose_recording_repeat": {
        "vi": "Bản ghi âm chỉ phát một lần; chương trình lặp lại đọc văn bản hoặc tiếp sóng đài.",
        "en": "A recording airs once; a repeating programme reads a text or relays a station.",
    },
    "compose_programme_draft": {
        "vi": "Chương trình lặp lại và tiếp sóng không lưu nháp: chúng được lên lịch ngay khi thêm.",
        "en": "Repeating programmes and relays are not drafted: they are scheduled as soon as they are added.",
    },
    "compose_emergency_text": {
        "vi": "Trên bàn làm việc, tin khẩn cấp gửi bằng văn bản (hoặc phát trực tiếp); bản ghi âm khẩn cấp gửi "
              "bằng lệnh «loa announce --audio ... --priority emergency».",
        "en": "On the desk an emergency is a text (or goes live); an emergency recording is sent with «loa announce "
              "--audio ... --priority emergency».",
    },
    # ------------------------------------------------------------ the commune's lexicon (services/lexicon.py)
    "not_found.lexicon": {
        "vi": "Không có mục từ điển số {id}.",
        "en": "There is no lexicon entry {id}.",
    },
    "lexicon_exists": {
        "vi": "Từ «{written}» đã có trong từ điển (mục số {id}); hãy sửa mục đó.",
        "en": "«{written}» is in the lexicon already (entry {id}); edit that entry.",
    },
    "lexicon_empty.written": {
        "vi": "Cần chữ viết (ví dụ: UBND, Nà Hẩu).",
        "en": "The written form is needed (for example UBND, Nà Hẩu).",
    },
    "lexicon_empty.spoken": {
        "vi": "Cần cách đọc (ví dụ: ủy ban nhân dân).",
        "en": "The spoken form is needed (for example ủy ban nhân dân).",
    },
    "lexicon_too_long.written": {
        "vi": "Chữ viết dài tối đa {max} ký tự.",
        "en": "The written form has at most {max} characters.",
    },
    "lexicon_too_long.spoken": {
        "vi": "Cách đọc dài tối đa {max} ký tự.",
        "en": "The spoken form has at most {max} characters.",
    },
    "lexicon_bad_chars": {
        "vi": "Chữ viết và cách đọc là một dòng chữ, không có ký tự điều khiển hay ký tự ẩn.",
        "en": "The written and spoken forms are one line of text, without control or invisible characters.",
    },
    "lexicon_digits": {
        "vi": "Cách đọc viết bằng chữ, không dùng chữ số (ví dụ «một trăm», không phải «100»).",
        "en": "Write the spoken form in words, without digits («một trăm», not «100»).",
    },
    "lexicon_no_word": {
        "vi": "Chữ viết và cách đọc cần có ít nhất một chữ cái.",
        "en": "The written and spoken forms need at least one letter.",
    },
    # ------------------------------------------------------------ LED slogans (services/slogans.py)
    "not_found.slogan": {
        "vi": "Không có khẩu hiệu số {id}.",
        "en": "There is no slogan {id}.",
    },
    "slogan_empty": {
        "vi": "Khẩu hiệu đang trống.",
        "en": "The slogan is empty.",
    },
    "slogan_too_long": {
        "vi": "Khẩu hiệu dài tối đa {max} ký tự (bảng LED hiển thị được chừng ấy).",
        "en": "A slogan has at most {max} characters (what the LED boards can show).",
    },
    # ------------------------------------------------------------ villagers' feedback (services/feedback.py)
    "not_found.feedback_qr": {
        "vi": "Mã QR này không đúng hoặc đã được thay. Hãy quét mã dán trên loa hoặc ở nhà văn hóa thôn.",
        "en": "This QR code is not valid or has been replaced. Scan the code on the speaker or at the village hall.",
    },
    "not_found.feedback": {
        "vi": "Không có ý kiến số {id}.",
        "en": "There is no feedback {id}.",
    },
    "not_found.village": {
        "vi": "Không có thôn '{zone}'.",
        "en": "There is no village '{zone}'.",
    },
    "not_found.listen": {
        "vi": "Không có tin này trong những tin đã phát gần đây.",
        "en": "This item is not among what aired lately.",
    },
    "too_many_feedback": {
        "vi": "Bạn đã gửi nhiều ý kiến trong thời gian ngắn. Xin thử lại sau {minutes} phút. Cảm ơn bà con!",
        "en": "Too much feedback was sent in a short time. Please try again in {minutes} min. Thank you!",
    },
    "feedback_refused": {
        "vi": "Không gửi được ý kiến: biểu mẫu có ô không dành cho người điền. Hãy tải lại trang rồi gửi lại.",
        "en": "The feedback was not sent: a field meant to stay empty was filled. Reload the page and send it again.",
    },
    "feedback_category": {
        "vi": "Hãy chọn một điều bạn muốn báo (không nghe rõ, quá to, loa hỏng, góp ý nội dung).",
        "en": "Choose what you want to report (not clear, too loud, speaker broken, about the content).",
    },
    "bad_phone": {
        "vi": "Số điện thoại chưa đúng: 8 đến 15 chữ số, ví dụ 0912 345 678 (hoặc để trống).",
        "en": "Not a phone number: 8 to 15 digits, as in 0912 345 678 (or leave it empty).",
    },
    "reply_required": {
        "vi": "Hãy ghi câu trả lời hoặc việc đã làm trước khi đánh dấu đã xử lý.",
        "en": "Write the reply, or what was done, before marking it handled.",
    },
    # ------------------------------------------------------------ official alerts (services/alerts.py, ingest/cap.py)
    "bad_scope": {
        "vi": "Không có quyền thêm '{scope}'. Các quyền thêm: {known}.",
        "en": "There is no scope '{scope}'. Scopes: {known}.",
    },
    "forbidden.token_scope": {
        "vi": "Chỉ quản trị viên mới cấp quyền thêm (scope) cho mã truy cập.",
        "en": "Only an admin gives a token a scope.",
    },
    "forbidden.scope": {
        "vi": "Mã truy cập này không có quyền '{scope}'; quản trị viên tạo mã có quyền đó "
              "(loa token add --scope {scope}).",
        "en": "This token lacks the scope '{scope}'; an admin makes one that has it (loa token add --scope {scope}).",
    },
    "alert_source_required": {
        "vi": "Cần nêu nguồn cảnh báo (source). Các nguồn: {known}.",
        "en": "Name the alert source (source). Sources: {known}.",
    },
    "alert_unknown_source": {
        "vi": "Không có nguồn cảnh báo '{source}' loại này trong [alerts.sources]. Các nguồn: {known}.",
        "en": "There is no alert source '{source}' of this kind in [alerts.sources]. Sources: {known}.",
    },
    "alert_too_large": {
        "vi": "Bản tin cảnh báo quá lớn (tối đa {max_kb} KB); không phát gì.",
        "en": "The alert document is too large (at most {max_kb} KB); nothing aired.",
    },
    "alert_malformed": {
        "vi": "Bản tin cảnh báo không phải XML hợp lệ ({detail}); không phát gì.",
        "en": "The alert is not well-formed XML ({detail}); nothing aired.",
    },
    "alert_schema": {
        "vi": "Bản tin cảnh báo không đúng lược đồ CAP 1.2 ({detail}); không phát gì.",
        "en": "The alert does not conform to the CAP 1.2 schema ({detail}); nothing aired.",
    },
    "alert_unsigned": {
        "vi": "Nguồn này phải ký số bản tin, nhưng chữ ký thiếu hoặc không đúng ({detail}); không phát gì.",
        "en": "This source must sign its alerts, and the signature is missing or wrong ({detail}); nothing aired.",
    },
    "alert_duplicate": {
        "vi": "Cảnh báo '{identifier}' của {sender} đã nhận rồi; không phát lại.",
        "en": "Alert '{identifier}' from {sender} was received already; it is not aired again.",
    },
    "alert_msg_type": {
        "vi": "Bản tin loại {msg_type} không có gì để phát.",
        "en": "A {msg_type} message has nothing to air.",
    },
    "alert_not_actual": {
        "vi": "Cảnh báo có trạng thái {status} (không phải Actual): chỉ tin thật mới được phát.",
        "en": "The alert's status is {status}, not Actual: only actual alerts are aired.",
    },
    "alert_expired": {
        "vi": "Cảnh báo đã hết hiệu lực lúc {expires}; không phát gì.",
        "en": "The alert expired at {expires}; nothing aired.",
    },
    "alert_unknown_reference": {
        "vi": "Không tìm thấy cảnh báo được nhắc tới ({references}) trong số đã phát hoặc đang chờ duyệt.",
        "en": "None of the alerts it refers to ({references}) was aired or is awaiting approval here.",
    },
    "alert_no_zone": {
        "vi": "Không khu vực nào của xã ứng với vùng cảnh báo ({areas}); xem [alerts] areas. Không phát gì.",
        "en": "No zone of the commune matches the alert's areas ({areas}); see [alerts] areas. Nothing aired.",
    },
    "alert_cancelled": {
        "vi": "Đã rút theo {by}.",
        "en": "Withdrawn by {by}.",
    },
    "alert_fetch_failed": {
        "vi": "Không tải được bản tin cảnh báo ({detail}).",
        "en": "The alert could not be fetched ({detail}).",
    },
    # ------------------------------------------------------------ news feeds (services/feeds.py, ingest/feeds.py)
    # Also stored as a feed's last failure (its code and params), shown on the desk in the reader's language.
    "not_found.feed": {
        "vi": "Không có nguồn tin số {id}.",
        "en": "There is no news feed {id}.",
    },
    "feed_exists": {
        "vi": "Nguồn tin {url} đã có (số {id}).",
        "en": "The news feed {url} is already there (number {id}).",
    },
    "feed_bad_url": {
        "vi": "Địa chỉ «{url}» không dùng được: cần một địa chỉ http:// hoặc https:// đầy đủ, tối đa {max} ký tự.",
        "en": "«{url}» cannot be used: a whole http:// or https:// address is needed, at most {max} characters.",
    },
    "feed_bad_interval": {
        "vi": "Chu kỳ lấy tin phải từ {min} đến {max} phút.",
        "en": "The polling interval must be from {min} to {max} minutes.",
    },
    "feed_redirect_refused": {
        "vi": "Máy chủ chuyển hướng tới «{url}», không phải địa chỉ http(s) (hoặc chuyển hướng quá nhiều lần).",
        "en": "The server redirects to «{url}», which is not an http(s) address (or redirects too many times).",
    },
    "feed_http": {
        "vi": "Máy chủ trả lỗi HTTP {status}.",
        "en": "The server answered HTTP {status}.",
    },
    "feed_timeout": {
        "vi": "Máy chủ không trả lời trong {seconds} giây.",
        "en": "The server did not answer within {seconds} seconds.",
    },
    "feed_too_large": {
        "vi": "Nội dung quá lớn (tối đa {max_kb} KB): không tải tiếp.",
        "en": "The content is too large (at most {max_kb} KB): the download was stopped.",
    },
    "feed_unreachable": {
        "vi": "Không kết nối được tới máy chủ ({detail}).",
        "en": "Cannot reach the server ({detail}).",
    },
    "feed_not_a_feed": {
        "vi": "Nội dung tải về không phải nguồn tin RSS hay Atom đọc được ({detail}).",
        "en": "What was downloaded is not a readable RSS or Atom feed ({detail}).",
    },
    "feed_not_article": {
        "vi": "Trang {url} không phải một bài báo (trang danh sách tin, hoặc quá ít chữ): không lấy.",
        "en": "The page {url} is not one article (a list of articles, or too little text): not taken.",
    },
    "feed_article_too_long": {
        "vi": "Bài {url} quá dài để đọc trên loa (tối đa {max} ký tự): không lấy.",
        "en": "The article {url} is too long to read out (at most {max} characters): not taken.",
    },
    "feed_no_link": {
        "vi": "Một tin trong nguồn không có địa chỉ bài http(s): bỏ qua.",
        "en": "An item of the feed has no http(s) article address: skipped.",
    },
    # ------------------------------------------------------------ loa backup, loa restore (runtime/backup.py)
    "backup_exists": {
        "vi": "Đã có tệp {path}: chọn tên khác, loa không ghi đè một bản sao lưu.",
        "en": "{path} already exists: choose another name; loa never overwrites a backup.",
    },
    "backup_tool_missing": {
        "vi": "Không tìm thấy {tool}: cài gói postgresql-client (sao lưu và khôi phục PostgreSQL cần nó).",
        "en": "{tool} was not found: install postgresql-client (backing up and restoring PostgreSQL needs it).",
    },
    "backup_tool_failed": {
        "vi": "{tool} báo lỗi, không có gì được ghi: {detail}",
        "en": "{tool} failed, nothing was written: {detail}",
    },
    "backup_bad_archive": {
        "vi": "Tệp {path} không phải bản sao lưu loa đọc được ({detail}).",
        "en": "{path} is not a loa backup this version can read ({detail}).",
    },
    "backup_wrong_database": {
        "vi": "Bản sao lưu là của cơ sở dữ liệu {archived}, cấu hình này dùng {configured}: khôi phục vào cùng "
              "loại cơ sở dữ liệu.",
        "en": "The backup holds a {archived} database and this configuration uses {configured}: restore into "
              "the same kind.",
    },
    "backup_other_schema": {
        "vi": "Bản sao lưu là của schema PostgreSQL «{archived}», cấu hình này dùng «{configured}».",
        "en": "The backup holds PostgreSQL schema «{archived}»; this configuration uses «{configured}».",
    },
    "restore_not_empty": {
        "vi": "{path} không trống: chỉ khôi phục vào chỗ trống (thư mục chưa có hoặc rỗng), để không ghi đè dữ "
              "liệu của xã.",
        "en": "{path} is not empty: loa restores only into an empty place (a missing or empty folder), never "
              "over a commune's data.",
    },
    "restore_database_not_empty": {
        "vi": "Schema PostgreSQL «{schema}» đã có bảng: chỉ khôi phục vào một cơ sở dữ liệu trống.",
        "en": "PostgreSQL schema «{schema}» already has tables: loa restores only into an empty database.",
    },
    # ------------------------------------------------------------ the command line's own words
    "server_not_installed": {
        "vi": "Lệnh này cần phần máy chủ của loa (thiếu thư viện {module}); cài bằng: pip install 'loa[server]'.",
        "en": "This command needs loa's server install (the library {module} is missing): "
              "pip install 'loa[server]'.",
    },
    "cli.error": {
        "vi": "Lỗi: {message} ({code})",
        "en": "Error: {message} ({code})",
    },
}
# fmt: on


def placeholders(template: str) -> set[str]:
    """The `{name}`s a template expects: what an error raised with it must give as params."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def pick_language(preferences: str | None) -> str:
    """The first language we speak from an Accept-Language header or LOA_LANG ("en-GB,en;q=0.8",
    "en", "vi-VN"); Vietnamese, the officers' language, when none of them is ours."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((preferences or "").split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, i, tag.strip().split("-", 1)[0].lower()))
    for weight, _, lang in sorted(ranked):
        if weight < 0 and lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE


_UNITS = {"vi": ("phút", "giây"), "en": ("min", "s")}


class _Formatter(string.Formatter):
    """str.format, plus `:duration` for seconds said as people say a length in that language."""

    def __init__(self, lang: str) -> None:
        self.minute, self.second = _UNITS.get(lang, _UNITS[DEFAULT_LANGUAGE])

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec != "duration":
            return str(super().format_field(value, format_spec))
        minutes, seconds = divmod(round(float(str(value))), 60)
        if not minutes:
            return f"{seconds} {self.second}"
        return f"{minutes} {self.minute}" + (f" {seconds} {self.second}" if seconds else "")


_FORMATTERS = {lang: _Formatter(lang) for lang in LANGUAGES}


def render(key: str, params: Mapping[str, object], lang: str) -> str | None:
    """The sentence for `key` in `lang` (Vietnamese if we do not speak `lang`), or None when the
    catalogue has no such key. A missing param raises KeyError: the caller decides what to say then."""
    entry = CATALOGUE.get(key)
    if entry is None:
        return None
    lang = lang if lang in entry else DEFAULT_LANGUAGE
    return _FORMATTERS.get(lang, _FORMATTERS[DEFAULT_LANGUAGE]).vformat(entry[lang], (), dict(params))


# ---------------------------------------------------------------- the `reason` columns


def coded_reason(code: str, detail: object = "") -> str:
    """What dispatch stores in a `reason` column (String(300)): "<code>" or "<code>: <detail>", the
    form devices' acks already use, so one reader renders both. Unknown codes are a programming
    error, caught here rather than shown to an officer as a bare code."""
    if f"reason.{code}" not in CATALOGUE:
        raise KeyError(f"no catalogue entry reason.{code}")
    text = f"{code}: {detail}" if str(detail) else code
    return text[:300]


def reason_text(stored: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A stored reason as a sentence in the person's language ("Lỗi tải âm thanh (HTTP 404)"). Rows
    written before reasons were coded hold a Vietnamese sentence, and a device may send a code we do
    not know: both are shown as stored."""
    code, _, detail = (stored or "").partition(":")
    entry = CATALOGUE.get(f"reason.{code.strip()}")
    if entry is None:
        return stored or ""
    template = entry.get(lang, entry[DEFAULT_LANGUAGE])
    detail = detail.strip()
    if "detail" in placeholders(template):
        text = template.format(detail=detail)
    else:
        text = f"{template} ({detail})" if detail else template
    return text[:1].upper() + text[1:]


def reason_label(code: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The words for a reason's code alone, for counting outcomes ("3 lỗi tải âm thanh")."""
    entry = CATALOGUE.get(f"reason.{code}")
    if entry is None or "detail" in placeholders(entry[DEFAULT_LANGUAGE]):
        return code
    return entry.get(lang, entry[DEFAULT_LANGUAGE])
