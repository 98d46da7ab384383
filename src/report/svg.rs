//! placeholder
use super::Report;
use std::io;
pub fn write<W: io::Write>(_report: &Report, _out: W) -> io::Result<()> {
    Ok(())
}
pub fn render(report: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    write(report, &mut out).expect("writing to a Vec<u8> cannot fail");
    out
}
