-- The language the candidate chose at sign-up: every mail to the account is written in it.
-- Accounts made before it was asked for were all served in French.
ALTER TABLE account ADD COLUMN language TEXT NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en'));
