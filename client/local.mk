# client/: libsettle, the installed client library: initiator API with leader
# discovery and retries, participant SDK, barrier.

include_HEADERS += client/settle.h
# settle.h includes the generated protocol header: install it next to it.
nodist_include_HEADERS = proto/settle.pb-c.h
