// adac real-time check: the hooks a host puts around its audio-thread work.
//
// A host that wants its audio thread checked calls adac_rt_begin() right before it processes a block
// and adac_rt_end() right after, on the audio thread. The symbols are weak: in a normal run nothing
// defines them and the calls are skipped; under LD_PRELOAD=librtcheck.so (hosts/rtcheck) they mark
// the calling thread as "in the audio callback" and everything the interposer catches in between
// (allocation, free, lock, blocking wait, system call) is counted and reported.
#pragma once

extern "C" {
void adac_rt_begin(void) __attribute__((weak));
void adac_rt_end(void) __attribute__((weak));
}

namespace adac {

// RAII bracket for one block of audio-thread work.
struct RtScope {
    RtScope() { if (adac_rt_begin) adac_rt_begin(); }
    ~RtScope() { if (adac_rt_end) adac_rt_end(); }
    RtScope(const RtScope&) = delete;
    RtScope& operator=(const RtScope&) = delete;
};

}  // namespace adac
