# xa/switch.mk: the X/Open xa_switch_t library for legacy TMs.
